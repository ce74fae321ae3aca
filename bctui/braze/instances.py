"""Braze REST instances (reference §1) and validation of a REST endpoint URL."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from bctui.errors import BctuiError


@dataclass(frozen=True)
class Instance:
    """One Braze instance: its name, its REST endpoint, and whether Braze documents it."""

    name: str
    rest_endpoint: str
    confirmed: bool = True


# From Braze's instance table. There is no US-09. ID-01 appears only in a per-endpoint OpenAPI
# file's server list, not in the instance table, so it is offered but marked unconfirmed.
INSTANCES: dict[str, Instance] = {
    item.name: item
    for item in (
        Instance("US-01", "https://rest.iad-01.braze.com"),
        Instance("US-02", "https://rest.iad-02.braze.com"),
        Instance("US-03", "https://rest.iad-03.braze.com"),
        Instance("US-04", "https://rest.iad-04.braze.com"),
        Instance("US-05", "https://rest.iad-05.braze.com"),
        Instance("US-06", "https://rest.iad-06.braze.com"),
        Instance("US-07", "https://rest.iad-07.braze.com"),
        Instance("US-08", "https://rest.iad-08.braze.com"),
        Instance("US-10", "https://rest.us-10.braze.com"),
        Instance("EU-01", "https://rest.fra-01.braze.eu"),
        Instance("EU-02", "https://rest.fra-02.braze.eu"),
        Instance("AU-01", "https://rest.au-01.braze.com"),
        Instance("ID-01", "https://rest.id-01.braze.com", confirmed=False),
    )
}

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_FIX = (
    "use one of the Braze REST endpoints (e.g. https://rest.iad-01.braze.com; the instance is "
    "shown in your dashboard URL), or an http:// URL on 127.0.0.1, ::1 or localhost for a local "
    "simulator"
)


def instance_for(endpoint: str) -> Instance | None:
    """The known instance whose REST endpoint this is, if any."""
    normalised = endpoint.strip().rstrip("/").lower()
    for item in INSTANCES.values():
        if item.rest_endpoint == normalised:
            return item
    return None


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (the only hosts allowed over plain http)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_endpoint(url: str) -> str:
    """Normalise a Braze REST endpoint (scheme://host[:port][/path], no trailing slash).

    An instance name such as ``US-01`` or ``eu-02`` is accepted and turned into its URL. https is
    required except for loopback hosts; a query, fragment or user info is refused.
    """
    text = url.strip()
    if not text:
        raise BctuiError("the Braze REST endpoint is empty", where="Braze endpoint", fix=_FIX)
    named = INSTANCES.get(text.upper())
    if named is not None:
        return named.rest_endpoint
    where = f"Braze endpoint {text!r}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise BctuiError(f"not a valid URL ({exc})", where=where, fix=_FIX) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http") or not host:
        raise BctuiError("not an http(s) URL with a host", where=where, fix=_FIX)
    if parts.username is not None or parts.password is not None:
        raise BctuiError("the URL must not carry a user name or password", where=where, fix=_FIX)
    if parts.query or parts.fragment:
        raise BctuiError("the URL must not have a query or fragment", where=where, fix=_FIX)
    if scheme == "http" and not is_loopback(host):
        raise BctuiError(
            "plain http is only allowed on loopback; the API key would travel unencrypted",
            where=where,
            fix=_FIX,
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"

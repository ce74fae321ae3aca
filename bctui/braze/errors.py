"""Typed errors of the Braze client; each carries the HTTP status, the endpoint and Braze's text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from bctui.errors import BctuiError, NotFoundError
from bctui.secret import Secret

# The permission each endpoint needs (reference §3).
ENDPOINT_PERMISSIONS: dict[str, str] = {
    "/users/track": "users.track",
    "/users/export/segment": "users.export.segment",
    "/segments/list": "segments.list",
    "/segments/details": "segments.details",
    "/campaigns/list": "campaigns.list",
    "/campaigns/details": "campaigns.details",
}

REDACTED = "[redacted]"
MIN_REDACTED = 4

# Braze's 401 body echoes the key ("Invalid API key: <key>"); cut whatever follows those words even
# when it is not byte-identical to our key (quoted, truncated, or from an older request format).
_ECHO = re.compile(
    r"(invalid (?:or missing )?(?:rest )?(?:api key|app group api identifier)\s*:?\s*)(\S+)",
    re.IGNORECASE,
)
_KEY_FIX = (
    "check the REST API key of this connection and that the endpoint is the key's own instance "
    "(a key sent to another instance or workspace gets 401); keys are listed in Braze under "
    "Settings > APIs and Identifiers"
)


def redact(text: str, secret: Secret | None) -> str:
    """`text` with the API key (and any key Braze echoes after "Invalid API key:") removed."""
    # A value this short is no secret, and cutting it out would garble ordinary words.
    if secret and len(secret.reveal()) >= MIN_REDACTED:
        value = secret.reveal()
        for form in {value, quote(value, safe="")}:
            text = text.replace(form, REDACTED)
    return _ECHO.sub(lambda m: m.group(1) + REDACTED, text)


def permission_for(path: str) -> str | None:
    """The API key permission Braze requires for this endpoint path."""
    return ENDPOINT_PERMISSIONS.get("/" + path.strip("/"))


class BrazeError(BctuiError):
    """A Braze API call failed; `status` is 0 when there was no HTTP response."""

    def __init__(
        self,
        message: str,
        *,
        path: str,
        endpoint: str = "",
        status: int = 0,
        braze_message: str = "",
        fix: str = "",
    ) -> None:
        self.status = status
        self.path = path
        self.endpoint = endpoint
        self.braze_message = braze_message
        super().__init__(message, where=f"Braze {endpoint}{path}", fix=fix)


class BrazeHttpError(BrazeError):
    """Braze answered with an error status that has no more specific class."""


class InvalidApiKey(BrazeHttpError):
    """401: Braze does not accept the API key here (wrong key, instance or workspace)."""

    def __init__(self, *, path: str, endpoint: str, braze_message: str, status: int = 401) -> None:
        super().__init__(
            f"Braze rejected the API key (HTTP {status}: {braze_message or 'Unauthorized'})",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=braze_message,
            fix=_KEY_FIX,
        )


class MissingPermission(BrazeHttpError):
    """403 (or a 401 whose text says so): the key lacks the permission this endpoint needs."""

    def __init__(self, *, path: str, endpoint: str, braze_message: str, status: int = 403) -> None:
        self.permission = permission_for(path) or "the permission for " + path
        super().__init__(
            f"the API key lacks the {self.permission} permission "
            f"(HTTP {status}: {braze_message or 'Access Denied'})",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=braze_message,
            fix=(
                f"create a REST API key with {self.permission} in Braze (Settings > APIs and "
                "Identifiers; a key's permissions cannot be edited) and store it for this "
                "connection; a 403 can also mean the workspace's plan does not include this API"
            ),
        )


class BadRequest(BrazeHttpError):
    """400: Braze refused the request as a whole; `errors` keeps Braze's `errors[]` items."""

    def __init__(
        self,
        *,
        path: str,
        endpoint: str,
        braze_message: str,
        errors: Sequence[Any] = (),
        status: int = 400,
    ) -> None:
        self.errors = list(errors)
        detail = f"; {len(self.errors)} item error(s)" if self.errors else ""
        super().__init__(
            f"Braze refused the request (HTTP {status}: {braze_message or 'Bad Request'}{detail})",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=braze_message,
            fix="correct the request data named in Braze's message",
        )


class NotFound(BrazeHttpError, NotFoundError):
    """404 (or a details lookup refused for its id): the path or the object does not exist."""

    def __init__(
        self, *, path: str, endpoint: str, braze_message: str, status: int = 404, what: str = ""
    ) -> None:
        subject = what or "the API path"
        fix = (
            f"pick {what} from Braze's current list"
            if what
            else "check that the endpoint is a Braze REST endpoint (no extra path, no trailing "
            "slash)"
        )
        super().__init__(
            f"Braze does not know {subject} (HTTP {status}: {braze_message or 'Not Found'})",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=braze_message,
            fix=fix,
        )


class UnsupportedMediaType(BrazeHttpError):
    """415: the request's Content-Type was not application/json."""

    def __init__(self, *, path: str, endpoint: str, braze_message: str) -> None:
        super().__init__(
            f"Braze refused the request body's media type "
            f"(HTTP 415: {braze_message or 'Unsupported Media Type'})",
            path=path,
            endpoint=endpoint,
            status=415,
            braze_message=braze_message,
            fix="send the body as JSON with 'Content-Type: application/json'",
        )


class PayloadTooLarge(BrazeHttpError):
    """413: the request body is over Braze's size limit (4 MB on most endpoints)."""

    def __init__(self, *, path: str, endpoint: str, braze_message: str) -> None:
        super().__init__(
            f"the request body is too large for Braze "
            f"(HTTP 413: {braze_message or 'Request Entity Too Large'})",
            path=path,
            endpoint=endpoint,
            status=413,
            braze_message=braze_message,
            fix="send fewer or smaller objects per request (Braze accepts up to 4 MB)",
        )


class RateLimited(BrazeHttpError):
    """429 that outlasted the retry policy; `retry_after` is Braze's wait in seconds, if given."""

    def __init__(
        self,
        *,
        path: str,
        endpoint: str,
        braze_message: str,
        retry_after: float | None,
        attempts: int,
    ) -> None:
        self.retry_after = retry_after
        wait = f"; Braze asks to wait {retry_after:.0f} s" if retry_after is not None else ""
        super().__init__(
            f"Braze kept rate-limiting the request after {attempts} attempt(s) "
            f"(HTTP 429: {braze_message or 'Rate Limited'}{wait})",
            path=path,
            endpoint=endpoint,
            status=429,
            braze_message=braze_message,
            fix=(
                "run again later; the workspace's rate limit is shared with every other client "
                "of this workspace (see Settings > APIs and Identifiers > API Usage Dashboard)"
            ),
        )


class ExportAlreadyRunning(BrazeHttpError):
    """429 from /users/export/segment: an export of that segment is still running.

    `after_lost_response` is True when an earlier attempt of this same call got no answer (timeout
    or dropped connection): the running export may then be the one this call started.
    """

    def __init__(
        self, *, path: str, endpoint: str, braze_message: str, after_lost_response: bool = False
    ) -> None:
        self.after_lost_response = after_lost_response
        note = (
            "; an earlier attempt of this request got no answer, so the running export may be "
            "this request's own"
            if after_lost_response
            else ""
        )
        super().__init__(
            f"an export of this segment is already running "
            f"(HTTP 429: {braze_message or 'Rate Limited'}){note}",
            path=path,
            endpoint=endpoint,
            status=429,
            braze_message=braze_message,
            fix=(
                "wait for the running export to finish (Braze allows one export per segment at a "
                "time) or cancel it with POST /export/segment/cancel, then run again"
            ),
        )


class ServerError(BrazeHttpError):
    """5xx that outlasted the retry policy."""

    def __init__(self, *, path: str, endpoint: str, braze_message: str, status: int, attempts: int):
        super().__init__(
            f"Braze failed with HTTP {status} after {attempts} attempt(s)"
            f"{': ' + braze_message if braze_message else ''}",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=braze_message,
            fix="Braze is having trouble; run again later (see https://braze.statuspage.io)",
        )


class UnexpectedResponse(BrazeHttpError):
    """Braze answered, but not in a shape this client understands (e.g. not JSON)."""

    def __init__(self, detail: str, *, path: str, endpoint: str, status: int) -> None:
        super().__init__(
            f"unexpected answer from Braze (HTTP {status}): {detail}",
            path=path,
            endpoint=endpoint,
            status=status,
            braze_message=detail,
            fix="check that the endpoint is a Braze REST endpoint and not a proxy or web page",
        )


class BrazeTimeout(BrazeError):
    """No answer within the timeout, on every attempt."""

    def __init__(self, *, path: str, endpoint: str, timeout: float, attempts: int) -> None:
        super().__init__(
            f"Braze did not answer within {timeout:g} s ({attempts} attempt(s))",
            path=path,
            endpoint=endpoint,
            fix="check the network path to Braze, or raise the timeout for this connection",
        )


class BrazeUnreachable(BrazeError):
    """The connection could not be made or was dropped, on every attempt."""

    def __init__(self, *, path: str, endpoint: str, detail: str, attempts: int) -> None:
        super().__init__(
            f"could not talk to Braze ({detail}; {attempts} attempt(s))",
            path=path,
            endpoint=endpoint,
            fix=(
                "check the REST endpoint URL (it must be your instance's, e.g. "
                "https://rest.iad-01.braze.com), DNS, proxies and firewalls"
            ),
        )


class BrazeTlsError(BrazeUnreachable):
    """The endpoint's TLS certificate could not be verified (not retried: it will not heal)."""

    def __init__(self, *, path: str, endpoint: str, detail: str) -> None:
        BrazeError.__init__(
            self,
            f"the TLS certificate of the endpoint could not be verified ({detail})",
            path=path,
            endpoint=endpoint,
            fix=(
                "check the REST endpoint URL; behind a TLS-inspecting proxy, point SSL_CERT_FILE "
                "at its CA bundle"
            ),
        )

"""Which of the six permissions bctui uses an API key has, found without writing anything.

Each endpoint is called with a request that Braze cannot act on, so only authorisation is tested:

- users.track: POST /users/track with `{"attributes": []}` (nothing to write);
- users.export.segment: POST /users/export/segment with `{}` (no segment, nothing exported);
- segments.list / campaigns.list: page 0 of the list;
- segments.details / campaigns.details: the first id from the list, or a made-up id when the list
  is empty or not permitted.

A 2xx, a 400 (request refused for its content) or, on the details endpoints, a 404 means the key may
call the endpoint; a 403 means it may not. A 401 is ambiguous (Braze sends it for a bad key, a key
of another instance, and per its newer docs for a missing permission): a 401 whose text talks about
permissions is "missing"; otherwise, if no endpoint accepted the key, the key is reported invalid,
and if some did, the 401s are missing permissions. Transport failures on every probe mean the
endpoint is unreachable. This relies on Braze checking authorisation before the body, as its
documented 401/403 causes suggest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bctui.braze.errors import (
    BadRequest,
    BrazeError,
    BrazeTimeout,
    BrazeUnreachable,
    InvalidApiKey,
    MissingPermission,
    NotFound,
)
from bctui.braze.retry import RetryPolicy

if TYPE_CHECKING:
    from bctui.braze.client import BrazeClient

PERMISSIONS = (
    "users.track",
    "users.export.segment",
    "segments.list",
    "segments.details",
    "campaigns.list",
    "campaigns.details",
)
BOGUS_ID = "bctui-permission-check"
# A check should answer quickly: few retries, short waits.
PROBE_RETRY = RetryPolicy(max_attempts=2, base=0.2, cap=1.0, max_rate_limited=3, max_wait=10.0)


class PermissionState(StrEnum):
    """The verdict for one permission."""

    OK = "ok"
    MISSING = "missing"
    ERROR = "error"


@dataclass(frozen=True)
class PermissionCheck:
    """One permission's verdict, with Braze's status and message when it is not ok."""

    permission: str
    state: PermissionState
    message: str = ""
    status: int = 0


@dataclass(frozen=True)
class PermissionReport:
    """The verdict per permission plus whether the key is invalid or the endpoint unreachable."""

    endpoint: str
    checks: tuple[PermissionCheck, ...]
    key_invalid: bool = False
    unreachable: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when every checked permission is present."""
        return all(check.state is PermissionState.OK for check in self.checks)

    @property
    def missing(self) -> list[str]:
        """The permissions the key lacks."""
        return [c.permission for c in self.checks if c.state is PermissionState.MISSING]

    def state(self, permission: str) -> PermissionState:
        """The verdict for one permission (KeyError if it was not checked)."""
        for check in self.checks:
            if check.permission == permission:
                return check.state
        raise KeyError(permission)

    def lines(self) -> list[str]:
        """A human-readable summary, one line per permission after an overall line."""
        if self.unreachable:
            head = f"{self.endpoint}: unreachable — {self.message}"
        elif self.key_invalid:
            head = f"{self.endpoint}: API key invalid — {self.message}"
        elif self.ok:
            head = f"{self.endpoint}: all {len(self.checks)} permissions present"
        else:
            head = f"{self.endpoint}: missing {', '.join(self.missing) or 'nothing'}"
        body = [
            f"  {c.permission:<22} {c.state.value}{' — ' + c.message if c.message else ''}"
            for c in self.checks
        ]
        return [head, *body]


@dataclass(frozen=True)
class _Outcome:
    permission: str
    state: PermissionState | None  # None: a plain 401, decided once all probes are in
    message: str = ""
    status: int = 0
    transport: bool = False
    first_id: str | None = None


def _first_id(data: Any, key: str) -> str | None:
    if isinstance(data, Mapping) and isinstance(data.get(key), list):
        for item in data[key]:
            if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
                return str(item["id"])
    return None


async def _probe(
    client: BrazeClient,
    permission: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, str | int | bool] | None = None,
    json: Any = None,
    list_key: str | None = None,
    details: bool = False,
) -> _Outcome:
    try:
        response = await client.request(method, path, params=params, json=json, retry=PROBE_RETRY)
    except MissingPermission as exc:
        return _Outcome(permission, PermissionState.MISSING, exc.braze_message, exc.status)
    except InvalidApiKey as exc:
        return _Outcome(permission, None, exc.braze_message, exc.status)
    except BadRequest as exc:
        return _Outcome(permission, PermissionState.OK, "", exc.status)
    except NotFound as exc:
        if details:
            return _Outcome(permission, PermissionState.OK, "", exc.status)
        return _Outcome(permission, PermissionState.ERROR, exc.message, exc.status)
    except (BrazeTimeout, BrazeUnreachable) as exc:
        return _Outcome(permission, PermissionState.ERROR, exc.message, 0, transport=True)
    except BrazeError as exc:
        return _Outcome(permission, PermissionState.ERROR, exc.message, exc.status)
    first = _first_id(response.data, list_key) if list_key else None
    return _Outcome(permission, PermissionState.OK, "", response.status, first_id=first)


async def check_permissions(
    client: BrazeClient, permissions: tuple[str, ...] = PERMISSIONS
) -> PermissionReport:
    """Test the client's key against each permission in `permissions` without writing anything."""
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permission(s): {', '.join(sorted(unknown))}")
    first_round = await asyncio.gather(
        _probe(client, "users.track", "POST", "/users/track", json={"attributes": []}),
        _probe(client, "users.export.segment", "POST", "/users/export/segment", json={}),
        _probe(client, "segments.list", "GET", "/segments/list", params={"page": 0},
               list_key="segments"),
        _probe(client, "campaigns.list", "GET", "/campaigns/list", params={"page": 0},
               list_key="campaigns"),
    )  # fmt: skip
    by_name = {outcome.permission: outcome for outcome in first_round}
    segment_id = by_name["segments.list"].first_id or BOGUS_ID
    campaign_id = by_name["campaigns.list"].first_id or BOGUS_ID
    second_round = await asyncio.gather(
        _probe(client, "segments.details", "GET", "/segments/details",
               params={"segment_id": segment_id}, details=True),
        _probe(client, "campaigns.details", "GET", "/campaigns/details",
               params={"campaign_id": campaign_id}, details=True),
    )  # fmt: skip
    by_name.update({outcome.permission: outcome for outcome in second_round})
    outcomes = [by_name[name] for name in PERMISSIONS if name in permissions]
    return _verdict(client.endpoint, outcomes, list(by_name.values()))


def _verdict(endpoint: str, wanted: list[_Outcome], every: list[_Outcome]) -> PermissionReport:
    if all(outcome.transport for outcome in every):
        return PermissionReport(
            endpoint,
            tuple(PermissionCheck(o.permission, PermissionState.ERROR, o.message) for o in wanted),
            unreachable=True,
            message=every[0].message,
        )
    key_accepted = any(
        o.state is PermissionState.OK or (o.state is PermissionState.MISSING and o.status == 403)
        for o in every
    )
    plain_401 = [o for o in every if o.state is None]
    key_invalid = bool(plain_401) and not key_accepted
    checks: list[PermissionCheck] = []
    for o in wanted:
        if o.state is not None:
            checks.append(PermissionCheck(o.permission, o.state, o.message, o.status))
        elif key_invalid:
            checks.append(PermissionCheck(o.permission, PermissionState.ERROR, o.message, 401))
        else:
            checks.append(
                PermissionCheck(
                    o.permission,
                    PermissionState.MISSING,
                    f"HTTP 401 here while other endpoints accept the key: {o.message}",
                    401,
                )
            )
    message = ""
    if key_invalid:
        message = (
            f"Braze refused the key on every endpoint ({plain_401[0].message or 'HTTP 401'}); "
            "check the key and that it belongs to this instance and workspace"
        )
    return PermissionReport(
        endpoint, tuple(checks), key_invalid=key_invalid, unreachable=False, message=message
    )

"""HTTP semantics of the simulated Braze REST API: routing, auth, limits, faults, JSON."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from bctui.sandbox.admin import handle_admin
from bctui.sandbox.permissions import ROUTES, TRACK
from bctui.sandbox.ratelimit import LimitDecision
from bctui.sandbox.wire import Request, Response, json_response

if TYPE_CHECKING:
    from bctui.sandbox.simulator import Simulator


ADMIN_PREFIX = "/_sandbox/"
PARSE_ERROR = "Error while parsing request body. Please check your syntax."


def handle(sim: Simulator, request: Request) -> Response:
    """Answer one request to the Braze API or the `/_sandbox/` admin API."""
    if request.path.startswith(ADMIN_PREFIX):
        return handle_admin(sim, request)
    delay = sim.settings.latency_ms / 1000.0
    response = _handle_api(sim, request)
    response.delay = delay
    response.headers.append(("X-Request-Id", str(uuid.uuid4())))
    return response


def _empty_limit_headers() -> list[tuple[str, str]]:
    # Observed on a real 401: the three headers present but empty (reference §4.3).
    return [("X-RateLimit-Limit", ""), ("X-RateLimit-Remaining", ""), ("X-RateLimit-Reset", "")]


def _limit_headers(decision: LimitDecision) -> list[tuple[str, str]]:
    # Reset is in epoch seconds, as api_limits documents (the MAU pages' "seconds remaining"
    # reading is the other, conflicting definition; reference §5.2).
    return [
        ("X-RateLimit-Limit", str(decision.limit)),
        ("X-RateLimit-Remaining", str(decision.remaining)),
        ("X-RateLimit-Reset", str(decision.reset_epoch)),
    ]


def _too_many(sim: Simulator, kind: str, decision: LimitDecision, message: str) -> Response:
    if kind == TRACK:
        # /users/track replaces the X-RateLimit-* headers by X-Ratelimit-Retry-After on a 429.
        retry = decision.retry_after(sim.clock())
        return json_response(429, {"message": message}, [("X-Ratelimit-Retry-After", str(retry))])
    return json_response(429, {"message": message}, _limit_headers(decision))


def bearer_key(headers: Mapping[str, str]) -> tuple[str | None, str]:
    """(the key, what to echo in a 401) from the Authorization header.

    Only the header is read: the legacy `api_key` body/query parameter is being sunset and
    whether it still works is UNCONFIRMED (reference §2), so the sandbox refuses it.
    """
    raw = headers.get("authorization", "")
    scheme, _, rest = raw.strip().partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        key = rest.strip()
        return key, key
    return None, raw.strip()


def _handle_api(sim: Simulator, request: Request) -> Response:
    route = ROUTES.get((request.method, request.path))
    if route is None:
        # A trailing slash or a wrong method is a different, unknown route (UNCONFIRMED, §1).
        endpoint = "other"
        sim.record(endpoint, 404)
        hint = " (a trailing slash makes a different path)" if request.path.endswith("/") else ""
        return json_response(
            404,
            {"message": f"Not Found: no endpoint {request.method} {request.path}{hint}"},
            _empty_limit_headers(),
        )
    endpoint = request.path
    response = _authorized(sim, request, route.name, route.permission, route.limit, route.faults)
    sim.record(endpoint, "drop" if response.drop else response.status)
    return response


def _authorized(
    sim: Simulator, request: Request, name: str, permission: str, kind: str, faults: bool
) -> Response:
    key, echo = bearer_key(request.headers)
    permissions = sim.key_permissions(key) if key is not None else None
    if permissions is None:
        return json_response(401, {"message": f"Invalid API key: {echo}"}, _empty_limit_headers())

    # Limits are per workspace, so only authenticated requests count against them.
    # The 429 body's wording is UNCONFIRMED (reference §5.3).
    decision = sim.rate_limit(kind)
    if not decision.allowed:
        return _too_many(sim, kind, decision, "API rate limit exceeded; retry after the reset")
    headers = _limit_headers(decision)

    # The permission is checked before the body, so an empty body can probe a key safely.
    # Status and body are UNCONFIRMED (reference §3): 403 {"message": "Access Denied"} by
    # default, 401 when `missing_permission_status` says so.
    if permission not in permissions:
        return json_response(
            sim.settings.missing_permission_status, {"message": "Access Denied"}, headers
        )

    if faults:
        fault = sim.draw_fault()
        if fault == "drop":
            return Response(0, b"", drop=True)
        if fault == "429":
            return _too_many(sim, kind, decision, "API rate limit exceeded (injected fault)")
        if fault == "500":
            return json_response(
                500, {"message": "Internal Server Error (injected fault)"}, headers
            )

    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            return json_response(
                415,
                {"message": "Unsupported Media Type: send 'Content-Type: application/json'"},
                headers,
            )
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            # Braze's documented text; under "message", like every other error (UNCONFIRMED).
            return json_response(400, {"message": f"{PARSE_ERROR} ({exc})"}, headers)
        if not isinstance(body, dict):
            return json_response(
                400, {"message": "The request body must be a JSON object"}, headers
            )
        status, payload = getattr(sim, name)(body)
    else:
        status, payload = getattr(sim, name)(request.query)
    return json_response(status, payload, headers)

"""`/_sandbox/…`: unauthenticated admin endpoints for tests, benchmarks and demo processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bctui.sandbox.wire import Request, Response, json_response

if TYPE_CHECKING:
    from bctui.sandbox.simulator import Simulator

_IDENTIFIERS = ("external_id", "braze_id", "email")


def handle_admin(sim: Simulator, request: Request) -> Response:
    """Answer one admin request (no auth, no latency, no limits, no faults)."""
    route = (request.method, request.path)
    if route == ("GET", "/_sandbox/stats"):
        return json_response(200, sim.stats)
    if route == ("POST", "/_sandbox/reset-stats"):
        sim.reset_stats()
        return json_response(200, {"message": "success"})
    if route == ("GET", "/_sandbox/users/count"):
        return json_response(200, {"count": sim.user_count, "bench_mode": sim.settings.bench_mode})
    if route == ("GET", "/_sandbox/users"):
        return _user(sim, request.query)
    if route == ("GET", "/_sandbox/settings"):
        return json_response(200, sim.settings.as_json())
    if route == ("POST", "/_sandbox/settings"):
        changes = _json_object(request)
        if isinstance(changes, Response):
            return changes
        try:
            settings = sim.configure(**changes)
        except (TypeError, ValueError) as exc:
            return json_response(400, {"message": str(exc)})
        return json_response(200, settings.as_json())
    if route == ("GET", "/_sandbox/exports"):
        return json_response(200, {"exports": [job.as_json() for job in sim.exports]})
    if route == ("POST", "/_sandbox/keys"):
        data = _json_object(request)
        if isinstance(data, Response):
            return data
        try:
            key = sim.add_key(data.get("permissions", []))
        except (TypeError, ValueError) as exc:
            return json_response(400, {"message": str(exc)})
        return json_response(201, {"api_key": key})
    return json_response(
        404, {"message": f"Not Found: no admin endpoint {request.method} {request.path}"}
    )


def _json_object(request: Request) -> dict[str, Any] | Response:
    try:
        data = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        return json_response(400, {"message": f"invalid JSON body ({exc})"})
    if not isinstance(data, dict):
        return json_response(400, {"message": "the body must be a JSON object"})
    return data


def _user(sim: Simulator, query: dict[str, str]) -> Response:
    lookup: dict[str, Any] = {k: query[k] for k in _IDENTIFIERS if k in query}
    if "alias_name" in query or "alias_label" in query:
        if "alias_name" not in query or "alias_label" not in query:
            return json_response(400, {"message": "give both alias_name and alias_label"})
        lookup["alias"] = (query["alias_name"], query["alias_label"])
    if len(lookup) != 1:
        return json_response(
            400,
            {
                "message": "give exactly one of external_id, braze_id, email, "
                "or alias_name with alias_label"
            },
        )
    if sim.settings.bench_mode:
        return json_response(404, {"message": "bench mode keeps no user state"})
    found = sim.user(**lookup)
    if found is None:
        return json_response(404, {"message": f"no user with {_describe(lookup)}"})
    return json_response(200, found)


def _describe(lookup: dict[str, Any]) -> str:
    ((name, value),) = lookup.items()
    if name == "alias":
        return f"alias {value[0]!r} (label {value[1]!r})"
    return f"{name} {value!r}"

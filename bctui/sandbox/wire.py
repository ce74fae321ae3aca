"""Requests and responses as the sandbox's HTTP server and handlers exchange them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    keep_alive: bool = True


@dataclass
class Response:
    """What to send back (or, with `drop`, to close the connection without an answer)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds to wait before answering (simulated latency)
    drop: bool = False
    close: bool = False


def json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON response."""
    return Response(status, orjson.dumps(payload), headers or [])

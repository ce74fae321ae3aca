"""A scripted stand-in Braze over real HTTP on loopback, for the variants the sandbox does not make.

Braze's reference leaves several things UNCONFIRMED (401 or 403 for a missing permission, `message`
or `error`, header case, epoch or delta resets, 429 bodies); this server answers whatever a test
scripts, so the client is tested against every variant over real sockets.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bctui.braze import RetryPolicy

# Retries that do not slow the tests down (the waits are still real asyncio sleeps).
QUICK = RetryPolicy(max_attempts=4, base=0.01, cap=0.05, max_rate_limited=20, max_wait=5.0)


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"message": "success"})
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False
    close: bool = False
    drop: bool = False  # close the socket without answering
    raw: bytes | None = None  # exact body bytes (not JSON-encoded)


@dataclass
class Seen:
    """One received request."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Script = Callable[[Seen], Reply]


class StandIn:
    """A threaded HTTP/1.1 server answering from a queue of replies (or a function)."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.replies: deque[Reply] = deque()
        self.script: Script | None = None
        self.connections = 0
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with standin._lock:
                    standin.connections += 1

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = standin._next(seen)
                if reply.drop:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                for name, value in reply.headers:
                    self.send_header(name, value)
                if reply.close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(data), 7):
                        piece = data[start : start + 7]
                        self.wfile.write(f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                self.wfile.flush()

            do_GET = _serve
            do_POST = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            if self.replies:
                return self.replies.popleft()
        if self.script is not None:
            return self.script(seen)
        return Reply(500, {"message": "stand-in: nothing scripted"})

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        with self._lock:
            self.replies.extend(replies)

    def __enter__(self) -> StandIn:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""A small asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) in front of the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from bctui.errors import BctuiError
from bctui.sandbox.api import handle
from bctui.sandbox.wire import Request, Response, json_response

if TYPE_CHECKING:
    from bctui.sandbox.simulator import Simulator

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 * 1024 * 1024  # "most endpoints accept bodies up to 4 MB" (reference §4.2)
START_TIMEOUT_SECONDS = 10.0


class BrazeServer:
    """Serves the simulated Braze REST API over HTTP/1.1 on loopback."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._connections: set[_HttpConnection] = set()

    @property
    def port(self) -> int:
        """The listening port (after start)."""
        if self._port is None:
            raise RuntimeError("BrazeServer is not running: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`: the REST endpoint to give a Braze client."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> BrazeServer:
        """Serve in a background thread; returns once the socket is listening."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._serve_in_background, name="sandbox-braze-http", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the Braze sandbox server did not start in time")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def _serve_in_background(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            # A failure to listen is raised by start(); later ones end the thread.
            if self._ready.is_set():
                log.exception("sandbox: the Braze HTTP server stopped unexpectedly")
            else:
                self._error = exc
                self._ready.set()

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` is called (another thread or a signal)."""
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        try:
            server = await loop.create_server(
                lambda: _HttpConnection(self),
                self.host,
                self._requested_port,
                backlog=1024,
                reuse_address=True,
            )
        except OSError as exc:
            raise BctuiError(
                f"the Braze sandbox could not listen on {self.host}:{self._requested_port} ({exc})",
                where="bctui sandbox",
                fix="choose another port with --port, or 0 for any free port",
            ) from exc
        self._port = int(server.sockets[0].getsockname()[1])
        self._loop = loop
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for connection in list(self._connections):
                connection.abort()
            await server.wait_closed()
            self._loop = None

    def stop(self) -> None:
        """Stop serving, close every connection and wait for the server thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stopping.set)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._port = None

    def __enter__(self) -> BrazeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"BrazeServer({where})"


class _HttpConnection(asyncio.Protocol):
    """One client connection: parses pipelined requests and answers them in order."""

    def __init__(self, server: BrazeServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._queue: deque[Request | Response] = deque()
        self._transport: asyncio.Transport | None = None
        self._busy = False  # a delayed response is pending
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._broken = False  # a framing error: nothing after it can be read
        self._continued = False  # "100 Continue" already sent for the request being read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport; the server closes every open connection when it stops."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and anything still queued for it."""
        self._closed = True
        self._server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
        self._queue.clear()

    def abort(self) -> None:
        """Close at once (server shutdown)."""
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        """Parse every complete request in the buffer, then answer what can be answered."""
        self._buffer += data
        while not self._closed and not self._broken:
            item = self._parse_one()
            if item is None:
                break
            self._queue.append(item)
            self._broken = isinstance(item, Response)
        self._pump()

    def _parse_one(self) -> Request | Response | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                return _fatal(431, "Request header fields too large")
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _fatal(400, f"Malformed request line: {lines[0][:100]!r}")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                return _fatal(400, f"Malformed header line: {line[:100]!r}")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            return _fatal(
                411, "Length Required: chunked bodies are not supported, send Content-Length"
            )
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            return _fatal(400, f"Invalid Content-Length: {length_text!r}")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            return _fatal(413, f"Request Entity Too Large: at most {MAX_BODY_BYTES} bytes")
        total = end + 4 + length
        if len(buffer) < total:
            self._maybe_continue(headers)
            return None
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        self._continued = False
        path, _, query_text = target.partition("?")
        query: dict[str, str] = {}
        for key, value in parse_qsl(query_text, keep_blank_values=True):
            query.setdefault(key, value)
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        return Request(method, unquote(path), query, headers, body, keep_alive)

    def _maybe_continue(self, headers: dict[str, str]) -> None:
        """Answer `Expect: 100-continue` (curl sends it for big bodies) when nothing is pending."""
        if (
            headers.get("expect", "").lower() == "100-continue"
            and not self._continued
            and not self._busy
            and not self._queue
            and self._transport is not None
        ):
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._continued = True

    def _pump(self) -> None:
        while not self._busy and self._queue:
            item = self._queue.popleft()
            if isinstance(item, Response):
                response = item
            else:
                response = self._answer(item)
                if not item.keep_alive:
                    response.close = True
            if response.delay > 0:
                self._busy = True
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(response.delay, self._deliver_later, response)
                return
            self._deliver(response)

    def _answer(self, request: Request) -> Response:
        try:
            return handle(self._server.simulator, request)
        except Exception:
            log.exception("sandbox: unhandled error answering %s %s", request.method, request.path)
            return json_response(500, {"message": "Internal Server Error (sandbox bug)"})

    def _deliver_later(self, response: Response) -> None:
        self._busy = False
        self._timer = None
        self._deliver(response)
        self._pump()

    def _deliver(self, response: Response) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if response.drop:
            # An injected fault: the socket is closed without any response.
            self._queue.clear()
            transport.abort()
            return
        reason = _reason(response.status)
        head = [f"HTTP/1.1 {response.status} {reason}", "Content-Type: application/json"]
        head.append(f"Content-Length: {len(response.body)}")
        head.extend(f"{name}: {value}" for name, value in response.headers)
        if response.close:
            head.append("Connection: close")
        transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        if response.close:
            self._queue.clear()
            transport.close()


def _fatal(status: int, message: str) -> Response:
    response = json_response(status, {"message": message})
    response.close = True
    return response


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"

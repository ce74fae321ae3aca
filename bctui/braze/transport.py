"""A lean HTTP/1.1 keep-alive transport for httpx on asyncio.

httpx's default transport (httpcore) spends milliseconds per request in its connection pool once
dozens of requests are in flight, which caps /users/track far below Braze's 1,000 requests per
second. This transport keeps one asyncio protocol per connection, reuses idle connections last-in
first-out, sends each request in one write and parses responses itself (Content-Length, chunked, or
until close). It speaks HTTP/1.1 over TCP or TLS (verified with the given or httpx's default SSL
context) without proxies; `BrazeClient` falls back to httpx's own transport when a proxy is
configured. Compressed answers are handed to httpx still encoded, with their headers, and httpx
decodes them as it does for its own transport. `bench/http_transport.py` measures it against httpx's
transport and aiohttp; tests/braze/test_transport_server.py checks it against uvicorn's h11 server.
"""

from __future__ import annotations

import asyncio
import select
import ssl
from collections.abc import Callable
from types import TracebackType

import httpx

MAX_HEAD = 64 * 1024
_NO_BODY_METHODS = frozenset({b"HEAD"})
Origin = tuple[str, str, int]


class _StaleConnection(Exception):
    """A pooled connection was closed by the server before anything was sent on it."""


class _Wire(asyncio.Protocol):
    """One HTTP/1.1 connection; carries one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the socket's transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Buffer the bytes and wake the reader."""
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        """The server closed its side: wake the reader, then close ours."""
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: no more reuse."""
        self.closed = True
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # use by the transport

    @property
    def reusable(self) -> bool:
        """Open, with nothing unread and no end of stream from the server."""
        return not self.closed and not self._eof and not self._buffer

    def quiet(self) -> bool:
        """True when the socket has nothing waiting that the loop has not read yet.

        An idle connection should be silent: a FIN, a TLS close_notify or a stray answer the loop
        has not processed yet means the server is closing it. Checked before reuse (as urllib3 and
        httpcore do), so a request is never written to a connection already closed by the server,
        where its fate would be unknown.
        """
        assert self.transport is not None
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return True
        try:
            return not _readable(sock.fileno())
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Drop the connection."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, timeout: float | None, request: httpx.Request) -> None:
        """Wait for more bytes or the end of the stream; ReadTimeout after `timeout` s idle."""
        if self._eof:
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        except TimeoutError:
            raise httpx.ReadTimeout(f"no data for {timeout:g} s", request=request) from None
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _check_open(self, request: httpx.Request) -> None:
        if self._eof:
            raise httpx.RemoteProtocolError(
                "the server closed the connection mid-response", request=request
            )

    async def _need(self, size: int, timeout: float | None, request: httpx.Request) -> None:
        while len(self._buffer) < size:
            self._check_open(request)
            await self._wait(timeout, request)

    async def _line(self, timeout: float | None, request: httpx.Request) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise httpx.RemoteProtocolError("response line too long", request=request)
            self._check_open(request)
            await self._wait(timeout, request)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def exchange(
        self,
        data: bytes,
        method: bytes,
        timeout: float | None,
        request: httpx.Request,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request, read its response: (status, reason, headers, body, keep-alive)."""
        assert self.transport is not None
        if self.closed or self._eof:
            raise _StaleConnection
        self.transport.write(data)
        while True:
            while (end := self._buffer.find(b"\r\n\r\n")) < 0:
                if self._eof:
                    # Sent but unanswered: it may have been processed, so only the caller's
                    # retry policy may send it again.
                    raise httpx.RemoteProtocolError(
                        "the server disconnected without sending a response", request=request
                    )
                if len(self._buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("response head too large", request=request)
                await self._wait(timeout, request)
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            version, status, reason, headers = _parse_head(head, request)
            if not 100 <= status < 200:
                break
        fields = {name.lower(): value for name, value in headers}
        connection = fields.get(b"connection", b"").lower()
        keep_alive = (version == b"HTTP/1.1" and b"close" not in connection) or (
            version == b"HTTP/1.0" and b"keep-alive" in connection
        )
        if method in _NO_BODY_METHODS or status in (204, 304):
            body = b""
        elif b"chunked" in fields.get(b"transfer-encoding", b"").lower():
            body = await self._chunked(timeout, request)
        elif b"content-length" in fields:
            try:
                size = int(fields[b"content-length"])
            except ValueError:
                raise httpx.RemoteProtocolError("bad Content-Length", request=request) from None
            await self._need(size, timeout, request)
            body = bytes(self._buffer[:size])
            del self._buffer[:size]
        else:
            while not self._eof:
                await self._wait(timeout, request)
            body = bytes(self._buffer)
            self._buffer.clear()
            keep_alive = False
        return status, reason, headers, body, keep_alive and self.reusable

    async def _chunked(self, timeout: float | None, request: httpx.Request) -> bytes:
        body = bytearray()
        while True:
            line = await self._line(timeout, request)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise httpx.RemoteProtocolError("bad chunk size", request=request) from None
            if size == 0:
                while await self._line(timeout, request):
                    pass  # trailer fields, unused
                return bytes(body)
            await self._need(size + 2, timeout, request)
            body += self._buffer[:size]
            del self._buffer[: size + 2]


def _readable(fd: int) -> bool:
    """Does `fd` have bytes (or an end of stream) to read right now? Never blocks."""
    if hasattr(select, "poll"):  # select() cannot take descriptors past FD_SETSIZE
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _parse_head(
    head: bytes, request: httpx.Request
) -> tuple[bytes, int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        raise httpx.RemoteProtocolError(
            f"bad status line {lines[0][:80]!r}", request=request
        ) from None
    version = parts[0]
    if not version.startswith(b"HTTP/1."):
        raise httpx.RemoteProtocolError(f"not HTTP/1.x: {lines[0][:80]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}", request=request)
        headers.append((name.strip(), value.strip()))
    return version, status, parts[2] if len(parts) > 2 else b"", headers


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 keep-alive connections on asyncio protocols, at most `max_connections` at once.

    Timeouts come from httpx's request extensions: `connect`, `read` (no data for that long) and
    `pool` (waiting for a free connection). Errors are raised as httpx's own exceptions.
    """

    def __init__(
        self,
        *,
        max_connections: int = 64,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._slots = asyncio.Semaphore(max_connections)
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Wire]] = {}
        self._open: set[_Wire] = set()

    async def __aenter__(self) -> FastTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        for wire in list(self._open):
            wire.close()
        self._open.clear()
        self._idle.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on an idle or new connection and return the read response."""
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        https = url.scheme == "https"
        origin: Origin = (url.scheme, url.host, url.port or (443 if https else 80))
        streamed = not isinstance(request.stream, httpx.ByteStream)
        body = await request.aread()
        fields = request.headers.raw
        if streamed:
            # httpx frames a streamed body as chunked; it is read whole here, so send its length.
            fields = [
                (name, value)
                for name, value in fields
                if name.lower() not in (b"transfer-encoding", b"content-length")
            ]
            fields.append((b"Content-Length", str(len(body)).encode("ascii")))
        method = request.method.encode("ascii")
        data = b"".join(
            [
                method,
                b" ",
                url.raw_path,
                b" HTTP/1.1\r\n",
                *(name + b": " + value + b"\r\n" for name, value in fields),
                b"\r\n",
                body,
            ]
        )
        await self._acquire(timeouts.get("pool"), request)
        try:
            loop = asyncio.get_running_loop()
            for _ in range(2):
                wire = self._take_idle(origin, loop.time())
                if wire is None:
                    wire = await self._connect(origin, https, timeouts.get("connect"), request)
                try:
                    status, reason, headers, content, keep = await wire.exchange(
                        data, method, timeouts.get("read"), request
                    )
                except _StaleConnection:
                    self._drop(wire)
                    continue
                except BaseException:
                    self._drop(wire)
                    raise
                if keep:
                    wire.idle_since = loop.time()
                    self._idle.setdefault(origin, []).append(wire)
                else:
                    self._drop(wire)
                return httpx.Response(
                    status,
                    headers=headers,
                    stream=httpx.ByteStream(content),
                    extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
                )
            raise httpx.RemoteProtocolError(
                "the server closed the connection without answering", request=request
            )
        finally:
            self._slots.release()

    async def _acquire(self, timeout: float | None, request: httpx.Request) -> None:
        if timeout is None:
            await self._slots.acquire()
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection", request=request) from None

    def _take_idle(self, origin: Origin, now: float) -> _Wire | None:
        idle = self._idle.get(origin)
        while idle:
            wire = idle.pop()
            if wire.reusable and now - wire.idle_since < self._keepalive_expiry and wire.quiet():
                return wire
            self._drop(wire)
        return None

    def _drop(self, wire: _Wire) -> None:
        wire.close()
        self._open.discard(wire)

    async def _connect(
        self, origin: Origin, https: bool, timeout: float | None, request: httpx.Request
    ) -> _Wire:
        _, host, port = origin
        loop = asyncio.get_running_loop()
        factory: Callable[[], _Wire] = lambda: _Wire(loop)  # noqa: E731
        context = None
        if https:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            context = self._ssl_context
        try:
            _, wire = await asyncio.wait_for(
                loop.create_connection(
                    factory, host, port, ssl=context, server_hostname=host if https else None
                ),
                timeout,
            )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {host}:{port} within {timeout:g} s", request=request
            ) from None
        except (OSError, ssl.SSLError) as exc:
            # Chained, so the client can tell a certificate failure from a refused connection.
            raise httpx.ConnectError(f"{host}:{port}: {exc}", request=request) from exc
        self._open.add(wire)
        return wire

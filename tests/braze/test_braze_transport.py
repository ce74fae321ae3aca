"""The client's HTTP/1.1 transport: framing variants, keep-alive, closes and timeouts."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from braze_standin import QUICK, Reply, StandIn

from bctui.braze import BrazeClient, BrazeTimeout, BrazeUnreachable, RetryPolicy
from bctui.braze.transport import FastTransport
from bctui.secret import Secret

SEGMENTS = {"segments": [{"id": "s1", "name": "One"}], "message": "success"}


def _list(url: str, times: int = 1) -> list[list[str]]:
    async def call() -> list[list[str]]:
        async with BrazeClient(url, Secret("k" * 20), retry=QUICK) as braze:
            return [[s.id for s in await braze.list_segments()] for _ in range(times)]

    return asyncio.run(call())


def test_chunked_answers_with_extensions_and_trailers(standin: StandIn) -> None:
    standin.queue(Reply(200, SEGMENTS, chunked=True), Reply(200, SEGMENTS))
    assert _list(standin.url, times=2) == [["s1"], ["s1"]]
    assert standin.connections == 1  # kept alive across both


def test_connection_close_answers_open_a_new_connection(standin: StandIn) -> None:
    standin.queue(Reply(200, SEGMENTS, close=True), Reply(200, SEGMENTS, close=True))
    assert _list(standin.url, times=2) == [["s1"], ["s1"]]
    assert standin.connections == 2


def test_keep_alive_reuses_one_connection(standin: StandIn) -> None:
    standin.script = lambda seen: Reply(200, SEGMENTS)
    assert _list(standin.url, times=5) == [["s1"]] * 5
    assert standin.connections == 1


class _RawServer:
    """A loopback server that answers each connection with fixed bytes, then closes."""

    def __init__(self, answer: bytes, hold: threading.Event | None = None) -> None:
        self.answer = answer
        self.hold = hold
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                if self.hold is not None:
                    self.hold.wait(10)
                conn.sendall(self.answer)


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[_RawServer]:
    server = _RawServer(request.param)
    server.thread.start()
    try:
        yield server
    finally:
        server.sock.close()


@pytest.mark.parametrize(
    "raw_server",
    [b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"segments": [], "message": "ok"}'],
    indirect=True,
)
def test_a_body_without_length_is_read_until_close(raw_server: _RawServer) -> None:
    assert _list(raw_server.url) == [[]]


@pytest.mark.parametrize(
    ("raw_server", "says"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", "mid-response"),
        (b"SMTP ready\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "bad header line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"", "without sending a response"),
    ],
    indirect=["raw_server"],
)
def test_broken_answers_are_transport_errors(raw_server: _RawServer, says: str) -> None:
    async def call() -> None:
        policy = RetryPolicy(max_attempts=1)
        async with BrazeClient(raw_server.url, Secret("k" * 20), retry=policy) as braze:
            await braze.list_segments()

    with pytest.raises(BrazeUnreachable) as caught:
        asyncio.run(call())
    assert says in caught.value.message


def test_a_silent_server_times_out_and_frees_the_connection() -> None:
    hold = threading.Event()
    server = _RawServer(b"", hold)
    server.thread.start()
    try:

        async def call() -> None:
            policy = RetryPolicy(max_attempts=1)
            async with BrazeClient(server.url, Secret("k" * 20), timeout=0.1, retry=policy) as b:
                await b.list_segments()

        with pytest.raises(BrazeTimeout):
            asyncio.run(call())
    finally:
        hold.set()
        server.sock.close()


def test_a_full_pool_queues_requests_instead_of_failing(standin: StandIn) -> None:
    standin.script = lambda seen: Reply(200, SEGMENTS)

    async def call() -> int:
        transport = FastTransport(max_connections=2)
        async with httpx.AsyncClient(transport=transport) as client:
            answers = await asyncio.gather(
                *(client.get(f"{standin.url}/segments/list") for _ in range(10))
            )
        return sum(a.status_code == 200 for a in answers)

    assert asyncio.run(call()) == 10
    assert standin.connections <= 2


def test_the_pool_timeout_is_honoured(standin: StandIn) -> None:
    hold = threading.Event()

    def slow(seen: object) -> Reply:
        hold.wait(10)
        return Reply(200, SEGMENTS)

    standin.script = slow

    async def call() -> None:
        transport = FastTransport(max_connections=1)
        timeout = httpx.Timeout(5.0, pool=0.05)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            first = asyncio.create_task(client.get(f"{standin.url}/a"))
            await asyncio.sleep(0)
            try:
                with pytest.raises(httpx.PoolTimeout):
                    await client.get(f"{standin.url}/b")
            finally:
                hold.set()
                await first

    asyncio.run(call())

"""FastTransport against an independent HTTP/1.1 server: uvicorn's h11 implementation on loopback.

The same ASGI app is served over plain HTTP and over TLS (a trustme CA the client verifies
against); it answers with Content-Length bodies, chunked bodies, gzip and deflate encodings, 429s
with rate-limit headers, and echoes large request bodies. Connections are counted by the client's
address as the server sees it, so keep-alive reuse is checked from the server side.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

trustme = pytest.importorskip("trustme")
uvicorn = pytest.importorskip("uvicorn")

from bctui.braze import BrazeClient, BrazeTlsError, RetryPolicy  # noqa: E402
from bctui.braze.transport import FastTransport  # noqa: E402
from bctui.secret import Secret  # noqa: E402

KEY = Secret("k" * 32)
QUICK = RetryPolicy(max_attempts=3, base=0.01, cap=0.05, max_rate_limited=5, max_wait=5.0)
SEGMENTS = {
    "segments": [{"id": f"seg-{i}", "name": f"Segment {i}"} for i in range(40)],
    "message": "success",
}
# A payload big enough to span many TCP reads and many TLS records, compressible or not.
BIG = {"rows": [{"id": i, "text": f"row {i} " + "x" * (i % 97)} for i in range(20_000)]}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class App:
    """A tiny ASGI app; records each request's client address (one per TCP connection)."""

    def __init__(self) -> None:
        self.peers: list[tuple[str, int]] = []
        self.limit_next = 0  # answer this many /users/track requests with a 429 first
        self.tracked = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        self.peers.append(tuple(scope["client"]))
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        if path == "/json":
            await _answer(send, 200, orjson.dumps(BIG if "big" in query else SEGMENTS))
        elif path == "/chunked":
            await _stream(send, 200, orjson.dumps(SEGMENTS), int(query.get("parts", "5")))
        elif path == "/encoded":
            raw = orjson.dumps(BIG if "big" in query else SEGMENTS)
            data = _encode(raw, query["enc"])
            extra = [(b"content-encoding", query["enc"].encode())]
            if "chunked" in query:
                await _stream(send, 200, data, 7, extra)
            else:
                await _answer(send, 200, data, extra)
        elif path == "/echo":
            digest = hashlib.sha256(body).hexdigest()
            await _answer(send, 200, orjson.dumps({"size": len(body), "sha256": digest}))
        elif path == "/empty":
            await _answer(send, 204, b"")
        elif path == "/limited":
            await _answer(send, 429, orjson.dumps({"message": "slow down"}), _limit_headers())
        elif path == "/segments/list":
            # Gzip and chunked, as Braze behind a CDN may answer when asked for gzip.
            raw = orjson.dumps(SEGMENTS)
            if "gzip" in headers.get("accept-encoding", ""):
                await _stream(send, 200, gzip.compress(raw), 4, [(b"content-encoding", b"gzip")])
            else:
                await _stream(send, 200, raw, 4)
        elif path == "/users/track":
            if self.limit_next > 0:
                self.limit_next -= 1
                await _answer(
                    send, 429, orjson.dumps({"message": "rate limited"}), _limit_headers()
                )
                return
            objects = orjson.loads(body)["attributes"]
            self.tracked += len(objects)
            answer = {"message": "success", "attributes_processed": len(objects)}
            await _stream(send, 201, gzip.compress(orjson.dumps(answer)), 3,
                          [(b"content-encoding", b"gzip")])  # fmt: skip
        else:
            await _answer(send, 404, orjson.dumps({"message": "not found"}))

    def connections(self) -> int:
        """How many distinct connections the requests so far came over."""
        return len(set(self.peers))


def _encode(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    raise ValueError(encoding)


def _limit_headers() -> list[tuple[bytes, bytes]]:
    reset = str(int(time.time()) + 1).encode()
    return [
        (b"x-ratelimit-limit", b"3000"),
        (b"x-ratelimit-remaining", b"0"),
        (b"x-ratelimit-reset", reset),
        (b"retry-after", b"0.05"),
    ]


async def _answer(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    if status != 204:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(
    send: Send, status: int, body: bytes, parts: int, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """No Content-Length and several body messages: h11 frames it with chunked encoding."""
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    step = max(1, -(-len(body) // parts))
    for start in range(0, len(body), step):
        await send({"type": "http.response.body", "body": body[start : start + step],
                    "more_body": True})  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


class Server:
    """uvicorn (`http="h11"`) in a thread on a loopback socket, optionally over TLS."""

    def __init__(self, cert: Any | None, tmp: Path, keep_alive: float = 5.0) -> None:
        self.app = App()
        # proto=IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted sockets (it checks proto):
        # without it Nagle holds the body behind the head for a delayed ACK (~40 ms).
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        port = self.sock.getsockname()[1]
        options: dict[str, Any] = {}
        if cert is not None:
            certfile, keyfile = tmp / "server.pem", tmp / "server.key"
            cert.cert_chain_pems[0].write_to_path(str(certfile))
            cert.private_key_pem.write_to_path(str(keyfile))
            options = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
        self.url = f"https://localhost:{port}" if cert is not None else f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.app,
            http="h11",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=keep_alive,
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def open_connections(self) -> int:
        """Connections the server holds open right now."""
        return len(self.server.server_state.connections)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def ca() -> Any:
    """A throwaway certificate authority the client trusts explicitly."""
    return trustme.CA()


@pytest.fixture(scope="module", params=["http", "https"])
def server(
    request: pytest.FixtureRequest, ca: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The app over plain HTTP and over TLS, for the whole module."""
    cert = ca.issue_cert("localhost", "127.0.0.1") if request.param == "https" else None
    with Server(cert, tmp_path_factory.mktemp("uvicorn")) as running:
        yield running


@pytest.fixture(params=["http", "https"])
def brief_server(request: pytest.FixtureRequest, ca: Any, tmp_path: Path) -> Iterator[Server]:
    """A server that closes connections idle for 0.2 s."""
    cert = ca.issue_cert("localhost", "127.0.0.1") if request.param == "https" else None
    with Server(cert, tmp_path, keep_alive=0.2) as running:
        yield running


def trusting(ca: Any) -> ssl.SSLContext:
    """A verifying client context that trusts the test CA (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def client(server: Server, ca: Any, max_connections: int = 16) -> httpx.AsyncClient:
    """httpx.AsyncClient straight on a FastTransport."""
    transport = FastTransport(max_connections=max_connections, ssl_context=trusting(ca))
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=10)


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll `predicate` on the running loop until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def run(coroutine: Awaitable[Any]) -> Any:
    """Run one test coroutine on a fresh loop."""

    async def main() -> Any:
        return await coroutine

    return asyncio.run(main())


# -- framing and encodings, straight through httpx --------------------------------------------


def test_content_length_bodies_large_and_small(server: Server, ca: Any) -> None:
    async def go() -> tuple[Any, Any, str]:
        async with client(server, ca) as http:
            small = await http.get("/json")
            big = await http.get("/json?big=1")
            return small.json(), big.json(), big.headers["content-length"]

    small, big, length = run(go())
    assert small == SEGMENTS
    assert big == BIG
    assert int(length) == len(orjson.dumps(BIG))


@pytest.mark.parametrize("parts", [1, 5, 200])
def test_chunked_bodies(server: Server, ca: Any, parts: int) -> None:
    async def go() -> httpx.Response:
        async with client(server, ca) as http:
            return await http.get(f"/chunked?parts={parts}")

    response = run(go())
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert response.json() == SEGMENTS


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("size", ["small", "big"])
def test_compressed_answers_reach_the_caller_decoded(
    server: Server, ca: Any, encoding: str, framing: str, size: str
) -> None:
    query = f"/encoded?enc={encoding}" + ("&chunked=1" if framing == "chunked" else "")
    query += "&big=1" if size == "big" else ""

    async def go() -> httpx.Response:
        async with client(server, ca) as http:
            return await http.get(query)

    response = run(go())
    assert response.headers["content-encoding"] == encoding
    assert response.json() == (BIG if size == "big" else SEGMENTS)


def test_bodiless_answers_keep_the_connection(server: Server, ca: Any) -> None:
    async def go() -> list[tuple[int, bytes]]:
        async with client(server, ca) as http:
            answers = []
            for request in (http.head("/json"), http.get("/empty"), http.get("/json")):
                response = await request
                answers.append((response.status_code, response.content))
            return answers

    before = len(server.app.peers)
    answers = run(go())
    assert [status for status, _ in answers] == [200, 204, 200]
    assert answers[0][1] == b"" and answers[1][1] == b""
    assert orjson.loads(answers[2][1]) == SEGMENTS
    assert len(set(server.app.peers[before:])) == 1


def test_a_429_arrives_with_its_headers(server: Server, ca: Any) -> None:
    async def go() -> httpx.Response:
        async with client(server, ca) as http:
            return await http.get("/limited")

    response = run(go())
    assert response.status_code == 429
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert response.headers["retry-after"] == "0.05"
    assert response.json() == {"message": "slow down"}


@pytest.mark.parametrize("size", [1, 70_000, 6_000_000])
def test_large_request_bodies_arrive_whole(server: Server, ca: Any, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)

    async def go() -> Any:
        async with client(server, ca) as http:
            return (await http.post("/echo", content=body)).json()

    assert run(go()) == {"size": size, "sha256": hashlib.sha256(body).hexdigest()}


# -- keep-alive and reconnects ----------------------------------------------------------------


def test_sequential_requests_reuse_one_connection(server: Server, ca: Any) -> None:
    async def go() -> list[Any]:
        async with client(server, ca) as http:
            return [(await http.get(f"/chunked?parts={i % 4 + 1}")).json() for i in range(40)]

    before = len(server.app.peers)
    assert run(go()) == [SEGMENTS] * 40
    assert len(set(server.app.peers[before:])) == 1


def test_concurrent_requests_share_a_bounded_pool(server: Server, ca: Any) -> None:
    async def go() -> list[Any]:
        async with client(server, ca, max_connections=6) as http:
            answers: list[Any] = []
            for round_ in range(3):
                batch = [
                    http.get(f"/encoded?enc=gzip&chunked=1&r={round_}&i={i}") for i in range(30)
                ]
                answers += [r.json() for r in await asyncio.gather(*batch)]
            return answers

    before = len(server.app.peers)
    assert run(go()) == [SEGMENTS] * 90
    assert 1 <= len(set(server.app.peers[before:])) <= 6


def test_connections_the_server_closed_while_idle_are_replaced(
    brief_server: Server, ca: Any
) -> None:
    async def go() -> list[Any]:
        answers = []
        async with client(brief_server, ca, max_connections=4) as http:
            for _ in range(3):
                batch = [http.get("/json") for _ in range(4)]
                answers += [r.json() for r in await asyncio.gather(*batch)]
                await until(lambda: brief_server.open_connections() == 0, "the idle close")
        return answers

    assert run(go()) == [SEGMENTS] * 12
    # Each round after an idle close came over new connections only.
    rounds = [set(brief_server.app.peers[i * 4 : i * 4 + 4]) for i in range(3)]
    assert not rounds[0] & rounds[1] and not rounds[1] & rounds[2]


# -- through BrazeClient ----------------------------------------------------------------------


def test_braze_client_over_tls_with_gzip_chunked_answers(ca: Any, tmp_path: Path) -> None:
    with Server(ca.issue_cert("localhost"), tmp_path) as server:

        async def go() -> list[list[str]]:
            transport = FastTransport(ssl_context=trusting(ca))
            async with BrazeClient(server.url, KEY, transport=transport, retry=QUICK) as braze:
                return [[s.id for s in await braze.list_segments()] for _ in range(3)]

        ids = [s["id"] for s in SEGMENTS["segments"]]
        assert run(go()) == [ids] * 3
        assert server.app.connections() == 1


def test_braze_client_sends_full_batches_and_rides_out_a_429(ca: Any, tmp_path: Path) -> None:
    objects = [
        {"external_id": f"user-{i:05d}", **{f"attr_{k}": f"value {i} {k} " * 20 for k in range(10)}}
        for i in range(75)
    ]
    with Server(ca.issue_cert("localhost"), tmp_path) as server:
        server.app.limit_next = 1

        async def go() -> tuple[list[int | None], int, int]:
            transport = FastTransport(ssl_context=trusting(ca))
            async with BrazeClient(server.url, KEY, transport=transport, retry=QUICK) as braze:
                results = [await braze.track(attributes=objects) for _ in range(3)]
                return (
                    [r.attributes_processed for r in results],
                    braze.stats.rate_limited,
                    braze.stats.transport_errors,
                )

        processed, limited, errors = run(go())
    assert processed == [75, 75, 75]
    assert (limited, errors) == (1, 0)
    assert server.app.tracked == 225


def test_braze_client_reconnects_after_an_idle_close_without_an_error(brief_server: Server,
                                                                      ca: Any) -> None:  # fmt: skip
    async def go() -> tuple[int, int]:
        transport = FastTransport(ssl_context=trusting(ca))
        async with BrazeClient(brief_server.url, KEY, transport=transport, retry=QUICK) as braze:
            for _ in range(3):
                await braze.list_segments()
                await until(lambda: brief_server.open_connections() == 0, "the idle close")
            return braze.stats.requests, braze.stats.transport_errors

    # No request fails: a connection the server closed is never written to.
    assert run(go()) == (3, 0)
    assert brief_server.app.connections() == 3


def test_the_default_transport_verifies_certificates(
    ca: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def go() -> int:
        async with BrazeClient(server.url, KEY, retry=QUICK) as braze:
            return len(await braze.list_segments())

    with Server(ca.issue_cert("localhost"), tmp_path) as server:
        with pytest.raises(BrazeTlsError) as caught:
            run(go())
        assert "certificate verify failed" in caught.value.message
        # The fix the error names works: trust the CA through SSL_CERT_FILE.
        cafile = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        monkeypatch.setenv("SSL_CERT_FILE", str(cafile))
        assert run(go()) == len(SEGMENTS["segments"])


def test_a_certificate_for_another_host_is_refused(ca: Any, tmp_path: Path) -> None:
    async def go() -> None:
        transport = FastTransport(ssl_context=trusting(ca))
        async with BrazeClient(server.url, KEY, transport=transport, retry=QUICK) as braze:
            await braze.list_segments()

    with (
        Server(ca.issue_cert("braze.example.com"), tmp_path) as server,
        pytest.raises(BrazeTlsError) as caught,
    ):
        run(go())
    assert "localhost" in caught.value.message or "hostname" in caught.value.message


def test_a_streamed_request_body_is_sent_with_its_length(server: Server, ca: Any) -> None:
    parts = [b"first part ", b"x" * 100_000, b" last part"]

    async def body() -> Any:
        for part in parts:
            yield part

    async def go() -> list[Any]:
        async with client(server, ca) as http:
            first = (await http.post("/echo", content=body())).json()
            second = (await http.get("/json")).json()  # the connection is still in step
            return [first, second]

    joined = b"".join(parts)
    assert run(go()) == [{"size": len(joined), "sha256": hashlib.sha256(joined).hexdigest()},
                         SEGMENTS]  # fmt: skip


@pytest.mark.parametrize("brief_server", ["http"], indirect=True)
def test_a_close_the_loop_has_not_seen_yet_is_noticed_before_writing(
    brief_server: Server, ca: Any
) -> None:
    # Plain HTTP only: over TLS the server waits for the client's close_notify before it drops
    # the connection, which a blocked client loop never sends (the TLS case is covered above).
    def blocking_until_closed() -> None:
        # Waits without yielding to the event loop, so the loop has not read the server's FIN
        # when the next request takes the idle connection.
        deadline = time.monotonic() + 10
        while brief_server.open_connections():
            assert time.monotonic() < deadline, "the server never closed the idle connection"
            time.sleep(0.01)

    async def go() -> tuple[int, int]:
        transport = FastTransport(ssl_context=trusting(ca))
        async with BrazeClient(brief_server.url, KEY, transport=transport, retry=QUICK) as braze:
            await braze.list_segments()
            blocking_until_closed()
            await braze.list_segments()
            return braze.stats.requests, braze.stats.transport_errors

    assert run(go()) == (2, 0)  # one attempt each: nothing was written to the closed connection
    assert brief_server.app.connections() == 2

"""HTTPS through the client's transport: a trusted certificate works, an untrusted one fails."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bctui.braze import BrazeClient, BrazeTlsError
from bctui.braze.transport import FastTransport
from bctui.secret import Secret


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"segments": [{"id": "tls-1", "name": "T"}], "message": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback with a fresh self-signed certificate for `localhost`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_https_with_a_trusted_certificate(https_server: tuple[str, Path]) -> None:
    url, cert = https_server

    async def call() -> list[str]:
        transport = FastTransport(ssl_context=ssl.create_default_context(cafile=str(cert)))
        async with BrazeClient(url, Secret("k" * 20), transport=transport) as braze:
            first = await braze.list_segments()
            second = await braze.list_segments()  # on the same kept-alive TLS connection
            return [s.id for s in first + second]

    assert asyncio.run(call()) == ["tls-1", "tls-1"]


def test_an_untrusted_certificate_is_refused_at_once(https_server: tuple[str, Path]) -> None:
    url, _ = https_server

    async def call() -> None:
        async with BrazeClient(url, Secret("k" * 20)) as braze:
            await braze.list_segments()

    with pytest.raises(BrazeTlsError) as caught:
        asyncio.run(call())
    assert "certificate verify failed" in caught.value.message
    assert "SSL_CERT_FILE" in caught.value.fix

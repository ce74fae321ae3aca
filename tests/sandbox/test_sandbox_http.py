"""Authentication, permissions, media type, JSON, routing and HTTP framing over real sockets."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from bctui.sandbox import Sandbox


def raw_exchange(sandbox: Sandbox, payload: bytes) -> bytes:
    """Send raw bytes to the Braze port and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=10) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_unknown_key_is_401_echoing_the_key(anonymous: httpx.Client) -> None:
    response = anonymous.get("/segments/list", headers={"Authorization": "Bearer non-existent"})
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key: non-existent"}
    # as observed on a real 401: the headers are there, but empty
    assert response.headers["X-RateLimit-Limit"] == ""
    assert response.headers["X-RateLimit-Remaining"] == ""


@pytest.mark.parametrize(
    ("header", "echo"),
    [
        (None, ""),
        ("Bearer", "Bearer"),
        ("secret-without-scheme", "secret-without-scheme"),
        ('Bearer "quoted"', '"quoted"'),
    ],
)
def test_missing_or_malformed_authorization_is_401(
    anonymous: httpx.Client, header: str | None, echo: str
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = anonymous.post("/users/track", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": f"Invalid API key: {echo}"}


def test_wrapping_a_valid_key_in_quotes_is_refused(
    sandbox: Sandbox, anonymous: httpx.Client
) -> None:
    response = anonymous.get(
        "/segments/list", headers={"Authorization": f'Bearer "{sandbox.api_key}"'}
    )
    assert response.status_code == 401


def test_missing_permission_is_403_before_the_body_is_read(
    sandbox: Sandbox, anonymous: httpx.Client
) -> None:
    key = sandbox.key_with("segments.list")
    headers = {"Authorization": f"Bearer {key}"}
    body = {"attributes": [{"external_id": "perm-probe", "first_name": "X"}]}
    response = anonymous.post("/users/track", json=body, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"message": "Access Denied"}
    assert sandbox.sim.user(external_id="perm-probe") is None
    # not even the body's syntax matters
    response = anonymous.post(
        "/users/track", content=b"{not json", headers={**headers, "Content-Type": "text/plain"}
    )
    assert response.status_code == 403
    assert anonymous.get("/segments/list", headers=headers).status_code == 200


def test_a_key_with_the_permission_can_probe_with_an_empty_body(
    sandbox: Sandbox, anonymous: httpx.Client
) -> None:
    key = sandbox.key_with("users.track")
    response = anonymous.post("/users/track", json={}, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Valid data must be provided")
    assert sandbox.sim.stats["attributes_processed"] == 0


def test_missing_permission_status_is_configurable(
    sandbox: Sandbox, anonymous: httpx.Client
) -> None:
    sandbox.sim.configure(missing_permission_status=401)
    key = sandbox.key_with("users.track")
    response = anonymous.get("/campaigns/list", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401


def test_every_endpoint_needs_its_own_permission(sandbox: Sandbox, anonymous: httpx.Client) -> None:
    calls = {
        "users.track": ("POST", "/users/track"),
        "users.export.segment": ("POST", "/users/export/segment"),
        "segments.list": ("GET", "/segments/list"),
        "segments.details": ("GET", "/segments/details"),
        "campaigns.list": ("GET", "/campaigns/list"),
        "campaigns.details": ("GET", "/campaigns/details"),
    }
    for permission, (method, path) in calls.items():
        others = [p for p in calls if p != permission]
        key = sandbox.key_with(*others)
        response = anonymous.request(
            method,
            path,
            json={} if method == "POST" else None,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 403, (permission, response.text)
        key = sandbox.key_with(permission)
        response = anonymous.request(
            method,
            path,
            json={} if method == "POST" else None,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code != 403, permission


def test_unknown_permission_names_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match=r"users\.trak"):
        sandbox.key_with("users.trak")


def test_post_without_json_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/users/track", content=b"{}")
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]
    response = client.post("/users/track", content=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_json_content_type_with_charset_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/users/track",
        content=b'{"attributes": [{"external_id": "charset", "a": 1}]}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_invalid_json_is_400_with_a_message(client: httpx.Client) -> None:
    response = client.post(
        "/users/track", content=b'{"attributes": [', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("Error while parsing request body")


def test_a_body_that_is_not_an_object_is_400(client: httpx.Client) -> None:
    response = client.post("/users/track", json=[{"external_id": "x"}])
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/users/track/"),
        ("GET", "/segments/list/"),
        ("GET", "/users/track"),
        ("POST", "/segments/list"),
        ("GET", "/canvas/list"),
        ("GET", "/"),
    ],
)
def test_unknown_paths_and_methods_are_404(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 404
    assert "message" in response.json()


def test_rate_limit_headers_on_every_authorized_response(client: httpx.Client) -> None:
    before = time.time()
    first = client.get("/segments/list")
    second = client.post("/users/track", json={})
    for response in (first, second):
        assert int(response.headers["X-RateLimit-Limit"]) > 0
        assert int(response.headers["X-RateLimit-Reset"]) >= int(before)
    assert first.headers["X-RateLimit-Limit"] == "250000"
    assert first.headers["X-RateLimit-Remaining"] == "249999"
    # the hourly shared window resets on the clock hour
    assert int(first.headers["X-RateLimit-Reset"]) % 3600 == 0
    assert second.headers["X-RateLimit-Limit"] == "3000"
    assert second.headers["X-RateLimit-Remaining"] == "2999"


def test_partner_field_and_bulk_header_are_accepted(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.post(
        "/users/track",
        json={"partner": "BlueConic", "attributes": [{"external_id": "bulk-1", "a": 1}]},
        headers={"X-Braze-Bulk": "true"},
    )
    assert response.status_code == 201
    assert sandbox.sim.user(external_id="bulk-1") is not None


def test_keep_alive_serves_many_requests_on_one_connection(sandbox: Sandbox) -> None:
    request = (
        f"GET /segments/list HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sandbox.api_key}\r\n\r\n"
    ).encode()
    last = request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    # three requests pipelined on one connection, the last one closing it
    reply = raw_exchange(sandbox, request + request + last)
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert reply.rstrip().endswith(b'"message":"success"}')


def test_chunked_bodies_are_refused_with_411(sandbox: Sandbox) -> None:
    reply = raw_exchange(
        sandbox,
        b"POST /users/track HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 411 ")


def test_a_malformed_request_line_is_400(sandbox: Sandbox) -> None:
    reply = raw_exchange(sandbox, b"NONSENSE\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_a_body_over_4_mb_is_413(sandbox: Sandbox) -> None:
    reply = raw_exchange(
        sandbox,
        b"POST /users/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_a_request_id_header_is_sent(client: httpx.Client) -> None:
    ids = {client.get("/segments/list").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3


def test_expect_100_continue_is_answered(sandbox: Sandbox) -> None:
    body = b'{"attributes": [{"external_id": "expect", "a": 1}]}'
    head = (
        "POST /users/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {sandbox.api_key}\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", sandbox.server.port), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 201 Created")
    assert sandbox.sim.user(external_id="expect") is not None

"""Live lookups for the pickers: the sandbox's segments and campaigns, and their typed errors."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bctui.braze import BrazeUnreachable, InvalidApiKey, MissingPermission, NotFound, ServerError
from bctui.engine.lookups import (
    fetch_campaign_details,
    fetch_campaigns,
    fetch_segment_details,
    fetch_segments,
)
from bctui.sandbox import Sandbox
from bctui.secret import Secret

BOGUS = "bogus-key-0123456789abcdef"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_segments_and_their_details(sandbox: Sandbox) -> None:
    key = Secret(sandbox.api_key)
    segments = fetch_segments(sandbox.braze_url, key)
    seeded = sorted(
        (s for s in sandbox.sim.catalog.segments if not s.archived),
        key=lambda s: (s.created_at, s.id),
    )
    assert [s.id for s in segments] == [s.id for s in seeded]  # every page, oldest first
    assert [s.name for s in segments] == [s.name for s in seeded]
    details = fetch_segment_details(sandbox.braze_url, key, segments[0].id)
    assert details.id == segments[0].id and details.name == segments[0].name
    with pytest.raises(NotFound):
        fetch_segment_details(sandbox.braze_url, key, "no-such-segment")


def test_campaigns_and_their_details(sandbox: Sandbox) -> None:
    key = Secret(sandbox.api_key)
    campaigns = fetch_campaigns(sandbox.braze_url, key)
    live = {c.id for c in sandbox.sim.catalog.campaigns if not c.archived}
    assert {c.id for c in campaigns} == live and len(campaigns) == len(live)
    details = fetch_campaign_details(sandbox.braze_url, key, campaigns[0].id)
    assert details.id == campaigns[0].id and details.name == campaigns[0].name
    assert details.archived is False
    with pytest.raises(NotFound):
        fetch_campaign_details(sandbox.braze_url, key, "no-such-campaign")


LOOKUPS: list[Callable[[str, Secret], object]] = [
    fetch_segments,
    fetch_campaigns,
    lambda url, key: fetch_segment_details(url, key, "seg"),
    lambda url, key: fetch_campaign_details(url, key, "camp"),
]


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_a_bad_key_is_invalid_api_key_with_the_key_redacted(
    sandbox: Sandbox, lookup: Callable[[str, Secret], object]
) -> None:
    with pytest.raises(InvalidApiKey) as caught:
        lookup(sandbox.braze_url, Secret(BOGUS))
    assert BOGUS not in str(caught.value) and BOGUS not in caught.value.braze_message
    assert caught.value.status == 401


def test_a_key_without_the_permission(sandbox: Sandbox) -> None:
    key = Secret(sandbox.key_with("users.track"))
    with pytest.raises(MissingPermission) as caught:
        fetch_campaigns(sandbox.braze_url, key)
    assert caught.value.permission == "campaigns.list"


@pytest.mark.parametrize("lookup", LOOKUPS)
def test_a_closed_port_is_unreachable(lookup: Callable[[str, Secret], object]) -> None:
    with pytest.raises(BrazeUnreachable):
        lookup(f"http://127.0.0.1:{closed_port()}", Secret("x" * 20))


class AlwaysFailing(BaseHTTPRequestHandler):
    """A Braze that answers every request with a 500."""

    requests = 0

    def do_GET(self) -> None:
        AlwaysFailing.requests += 1
        body = b'{"message": "Internal Server Error"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_failing_braze_gives_up_within_seconds() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysFailing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        with pytest.raises(ServerError):
            fetch_segments(f"http://127.0.0.1:{server.server_port}", Secret("k" * 20))
        assert time.monotonic() - started < 5
        assert AlwaysFailing.requests == 2  # one retry, not the runs' six tries
    finally:
        server.shutdown()
        server.server_close()

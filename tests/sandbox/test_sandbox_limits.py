"""Rate limits (headers, 429 and Retry-After) and injected faults (reference §5)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest

from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.sandbox.ratelimit import FixedWindowLimiter

# Windows of an hour: a test never straddles a reset in practice.
HOUR = 3600.0
TRACK = {"attributes": [{"external_id": "limit", "n": 1}]}


def http(box: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=box.braze_url, headers={"Authorization": f"Bearer {box.api_key}"}, timeout=10
    )


def test_track_limit_429_carries_retry_after_instead_of_limit_headers(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(track_rate_limit=(3, HOUR)))
    with http(box) as client:
        remaining = [
            client.post("/users/track", json=TRACK).headers["X-RateLimit-Remaining"]
            for _ in range(3)
        ]
        assert remaining == ["2", "1", "0"]
        refused = client.post("/users/track", json=TRACK)
        assert refused.status_code == 429
        assert "message" in refused.json()
        retry = int(refused.headers["X-Ratelimit-Retry-After"])
        assert 1 <= retry <= HOUR
        assert "X-RateLimit-Limit" not in refused.headers
        assert "X-RateLimit-Remaining" not in refused.headers
        # the other endpoints have their own, shared limit
        assert client.get("/segments/list").status_code == 200
    stats = box.sim.stats
    assert stats["rate_limited"] == 1
    assert stats["requests"]["/users/track"] == {"201": 3, "429": 1}
    assert stats["attributes_processed"] == 3


def test_shared_limit_covers_list_details_and_export(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(shared_rate_limit=(2, HOUR)))
    with http(box) as client:
        assert client.get("/segments/list").status_code == 200
        assert client.get("/campaigns/list").status_code == 200
        refused = client.post("/users/export/segment", json={})
        assert refused.status_code == 429
        assert refused.headers["X-RateLimit-Limit"] == "2"
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert int(refused.headers["X-RateLimit-Reset"]) % 3600 == 0
        assert client.post("/users/track", json=TRACK).status_code == 201


def test_limits_can_change_at_run_time(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.sim.configure(track_rate_limit=(1, HOUR))
    assert client.post("/users/track", json=TRACK).status_code == 201
    assert client.post("/users/track", json=TRACK).status_code == 429
    sandbox.sim.configure(track_rate_limit=(3000, 3.0))
    assert client.post("/users/track", json=TRACK).status_code == 201


def test_fixed_windows_align_to_the_clock() -> None:
    limiter = FixedWindowLimiter(2, 3600.0)
    start = 1_700_000_000.0 - (1_700_000_000.0 % 3600)
    first = limiter.hit(start + 10)
    assert (first.allowed, first.remaining, first.reset_epoch) == (True, 1, int(start + 3600))
    assert limiter.hit(start + 20).allowed
    refused = limiter.hit(start + 3599)
    assert not refused.allowed
    assert refused.retry_after(start + 3599) == 1
    assert limiter.hit(start + 3600).allowed  # a new window


@pytest.mark.parametrize(("fault", "status"), [("fault_500", 500), ("fault_429", 429)])
def test_injected_faults_answer_before_any_state_change(
    make_sandbox: Callable[..., Sandbox], fault: str, status: int
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings().updated({fault: 1.0}))
    with http(box) as client:
        response = client.post("/users/track", json=TRACK)
        assert response.status_code == status
        if status == 429:
            assert int(response.headers["X-Ratelimit-Retry-After"]) >= 1
        export = client.post("/users/export/segment", json={})
        assert export.status_code == status
        # faults only hit /users/track and exports
        assert client.get("/segments/list").status_code == 200
    assert box.sim.user(external_id="limit") is None
    assert box.sim.stats["faults"][fault.removeprefix("fault_")] == 2
    assert box.sim.exports == []


def test_dropped_connections_close_without_a_response(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(fault_drop=1.0))
    with http(box) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/users/track", json=TRACK)
        assert client.get("/segments/list").status_code == 200
    assert box.sim.user(external_id="limit") is None
    assert box.sim.stats["requests"]["/users/track"] == {"drop": 1}


def test_fault_fractions_are_roughly_honoured(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(
        users=0, settings=SimulatorSettings(fault_429=0.2, fault_500=0.2, fault_drop=0.0)
    )
    with http(box) as client:
        statuses = [client.post("/users/track", json=TRACK).status_code for _ in range(200)]
    assert set(statuses) == {201, 429, 500}
    assert 10 < statuses.count(500) < 80
    assert 10 < statuses.count(429) < 80


def test_latency_holds_a_response_without_blocking_other_connections(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # A minute of latency: the delayed answer cannot arrive while the test runs.
    box = make_sandbox(users=0, settings=SimulatorSettings(latency_ms=60_000))
    outcome: list[BaseException | int] = []

    def slow_call() -> None:
        with http(box) as client:
            try:
                outcome.append(client.get("/segments/list").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    with http(box) as client:
        # the admin API is never delayed, and other connections are served meanwhile
        while box.sim.stats["requests"].get("/segments/list") is None:
            assert client.get("/_sandbox/stats").status_code == 200
    assert outcome == []  # the delayed response has not been sent
    box.stop()  # closes the waiting connection
    caller.join()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.HTTPError)


@pytest.mark.parametrize(
    "changes",
    [
        {"fault_429": 1.5},
        {"fault_429": 0.6, "fault_500": 0.6},
        {"track_rate_limit": (0, 3.0)},
        {"object_limit_mode": "unlimited"},
        {"missing_permission_status": 404},
        {"export_file_users": 0},
        {"no_such_setting": 1},
    ],
)
def test_invalid_settings_are_refused(sandbox: Sandbox, changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        sandbox.sim.configure(**changes)

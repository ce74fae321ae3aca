"""Every error class, against the sandbox and a scripted stand-in over real HTTP."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable

import pytest
from braze_standin import QUICK, Reply, StandIn, closed_port

from bctui.braze import (
    BadRequest,
    BrazeClient,
    BrazeError,
    BrazeHttpError,
    BrazeTimeout,
    BrazeUnreachable,
    ExportAlreadyRunning,
    InvalidApiKey,
    MissingPermission,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    ServerError,
    UnexpectedResponse,
    UnsupportedMediaType,
)
from bctui.errors import NotFoundError
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret

SECRET_KEY = "sk-live-0123456789abcdef-DO-NOT-LEAK"


def _everything_about(exc: BaseException) -> str:
    """Every place a key could leak from an exception: str, repr, args, attributes, traceback."""
    parts = [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
    parts.extend(traceback.format_exception(exc))
    return "\n".join(parts)


def test_bad_key_is_invalid_api_key_and_the_echoed_key_is_redacted(sandbox: Sandbox) -> None:
    async def call() -> None:
        async with BrazeClient(sandbox.braze_url, Secret(SECRET_KEY), retry=QUICK) as braze:
            await braze.list_segments()

    with pytest.raises(InvalidApiKey) as caught:
        asyncio.run(call())
    error = caught.value
    assert error.status == 401
    assert error.path == "/segments/list"
    assert error.braze_message == "Invalid API key: [redacted]"
    assert sandbox.braze_url in error.where
    assert "Settings > APIs and Identifiers" in error.fix
    assert SECRET_KEY not in _everything_about(error)


def test_redaction_also_cuts_a_key_braze_echoes_differently(standin: StandIn) -> None:
    # e.g. a key from an older request format, or quoted: whatever follows the words is cut.
    standin.queue(Reply(401, {"message": 'Invalid API key: "other-key-42"'}))

    async def call() -> None:
        async with BrazeClient(standin.url, Secret(SECRET_KEY), retry=QUICK) as braze:
            await braze.segment_details("s1")

    with pytest.raises(InvalidApiKey) as caught:
        asyncio.run(call())
    assert "other-key-42" not in _everything_about(caught.value)
    assert "[redacted]" in caught.value.braze_message


def test_the_key_is_sent_as_a_bearer_token_with_json_content_type(standin: StandIn) -> None:
    standin.queue(Reply(200, {"segments": [], "message": "success"}))

    async def call() -> None:
        async with BrazeClient(standin.url, Secret(SECRET_KEY), retry=QUICK) as braze:
            assert SECRET_KEY not in repr(braze)
            await braze.list_segments()

    asyncio.run(call())
    seen = standin.seen[0]
    assert seen.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.path == "/segments/list?page=0"


@pytest.mark.parametrize("status", [403, 401])
def test_missing_permission_in_both_variants(
    make_sandbox: Callable[..., Sandbox], status: int
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(missing_permission_status=status))
    key = box.key_with("segments.list")

    async def call() -> None:
        async with BrazeClient(box.braze_url, Secret(key), retry=QUICK) as braze:
            await braze.list_campaigns()

    with pytest.raises(MissingPermission) as caught:
        asyncio.run(call())
    error = caught.value
    assert error.status == status
    assert error.permission == "campaigns.list"
    assert "campaigns.list" in error.message and "campaigns.list" in error.fix
    assert key not in _everything_about(error)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"message": "Invalid API key: abc"}, InvalidApiKey),
        (401, {"message": "Access Denied"}, MissingPermission),
        (401, {"error": "The API key does not have the users.track permission"}, MissingPermission),
        (401, {}, InvalidApiKey),
        (403, {"message": "Forbidden"}, MissingPermission),
        (403, {}, MissingPermission),
    ],
)
def test_401_and_403_variants(
    standin: StandIn, status: int, body: dict[str, str], expected: type[BrazeError]
) -> None:
    standin.queue(
        Reply(status, body, headers=[("X-RateLimit-Limit", ""), ("X-RateLimit-Reset", "")])
    )

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.track(attributes=[{"external_id": "u1", "a": 1}])

    with pytest.raises(expected) as caught:
        asyncio.run(call())
    assert caught.value.status == status
    if expected is MissingPermission:
        assert "users.track" in caught.value.fix


def test_415_when_the_content_type_is_wrong(sandbox: Sandbox) -> None:
    async def call() -> None:
        async with BrazeClient(sandbox.braze_url, Secret(sandbox.api_key), retry=QUICK) as braze:
            await braze.request(
                "POST",
                "/users/track",
                content=b'{"attributes": [{"external_id": "u1", "x": 1}]}',
                headers={"Content-Type": "text/plain"},
            )

    with pytest.raises(UnsupportedMediaType) as caught:
        asyncio.run(call())
    assert caught.value.status == 415
    assert "application/json" in caught.value.fix


def test_404_for_an_unknown_path(sandbox: Sandbox) -> None:
    async def call() -> None:
        async with BrazeClient(sandbox.braze_url, Secret(sandbox.api_key), retry=QUICK) as braze:
            await braze.request("GET", "/segments/list/")

    with pytest.raises(NotFound) as caught:
        asyncio.run(call())
    assert caught.value.status == 404
    assert isinstance(caught.value, NotFoundError)
    assert "trailing slash" in caught.value.fix


def test_400_without_errors_is_bad_request(sandbox: Sandbox) -> None:
    too_many = {"attributes": [{"external_id": f"u{i}", "x": i} for i in range(76)]}

    async def call() -> None:
        async with BrazeClient(sandbox.braze_url, Secret(sandbox.api_key), retry=QUICK) as braze:
            await braze.request("POST", "/users/track", json=too_many)

    with pytest.raises(BadRequest) as caught:
        asyncio.run(call())
    assert caught.value.status == 400
    assert caught.value.braze_message


def test_bad_json_body_is_bad_request_with_brazes_text(standin: StandIn) -> None:
    # Braze's newer errors page shows the parse error under `error`, not `message`.
    text = "Error while parsing request body. Please check your syntax."
    standin.queue(Reply(400, {"error": text}))

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.track(attributes=[{"external_id": "u1"}])

    with pytest.raises(BadRequest) as caught:
        asyncio.run(call())
    assert caught.value.braze_message == text
    assert caught.value.errors == []


@pytest.mark.parametrize(
    ("reply", "expected", "says"),
    [
        (Reply(413, {"message": "Request Entity Too Large"}), PayloadTooLarge, "4 MB"),
        (Reply(409, {"message": "Conflict"}), BrazeHttpError, "HTTP 409"),
        (Reply(200, raw=b"<html>login</html>"), UnexpectedResponse, "not JSON"),
        (
            Reply(302, headers=[("Location", "https://example.com/")]),
            UnexpectedResponse,
            "redirected",
        ),
    ],
)
def test_other_answers(
    standin: StandIn, reply: Reply, expected: type[BrazeError], says: str
) -> None:
    standin.queue(reply)

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.request("GET", "/segments/list")

    with pytest.raises(expected) as caught:
        asyncio.run(call())
    assert says in str(caught.value)


def test_5xx_is_retried_then_raised_as_server_error(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(fault_500=1.0))
    policy = RetryPolicy(max_attempts=3, base=0.0, cap=0.0)

    async def call() -> None:
        async with BrazeClient(box.braze_url, Secret(box.api_key), retry=policy) as braze:
            await braze.track(attributes=[{"external_id": "u1", "a": 1}])

    with pytest.raises(ServerError) as caught:
        asyncio.run(call())
    assert caught.value.status == 500
    assert "3 attempt" in caught.value.message
    assert box.sim.stats["requests"]["/users/track"] == {"500": 3}


def test_dropped_connections_are_retried_then_raised_as_unreachable(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(fault_drop=1.0))
    policy = RetryPolicy(max_attempts=2, base=0.0, cap=0.0)

    async def call() -> None:
        async with BrazeClient(box.braze_url, Secret(box.api_key), retry=policy) as braze:
            await braze.track(attributes=[{"external_id": "u1", "a": 1}])

    with pytest.raises(BrazeUnreachable) as caught:
        asyncio.run(call())
    assert caught.value.status == 0
    assert box.sim.stats["requests"]["/users/track"] == {"drop": 2}


def test_a_slow_answer_times_out(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(latency_ms=2000))
    policy = RetryPolicy(max_attempts=2, base=0.0, cap=0.0)

    async def call() -> None:
        async with BrazeClient(
            box.braze_url, Secret(box.api_key), timeout=0.2, retry=policy
        ) as braze:
            await braze.track(attributes=[{"external_id": "u1", "a": 1}])

    with pytest.raises(BrazeTimeout) as caught:
        asyncio.run(call())
    assert "0.2 s" in caught.value.message
    assert "2 attempt" in caught.value.message


def test_a_closed_port_is_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    policy = RetryPolicy(max_attempts=2, base=0.0, cap=0.0)

    async def call() -> None:
        async with BrazeClient(url, Secret("k" * 20), retry=policy) as braze:
            await braze.list_segments()

    with pytest.raises(BrazeUnreachable) as caught:
        asyncio.run(call())
    assert url in caught.value.where
    assert "ConnectError" in caught.value.message


def test_429_beyond_the_policy_is_rate_limited(standin: StandIn) -> None:
    standin.script = lambda seen: Reply(
        429, {"message": "Rate limit exceeded"}, headers=[("x-ratelimit-retry-after", "0.05")]
    )
    policy = RetryPolicy(max_attempts=2, base=0.0, cap=0.0, max_rate_limited=2)

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=policy) as braze:
            await braze.track(attributes=[{"external_id": "u1"}])

    with pytest.raises(RateLimited) as caught:
        asyncio.run(call())
    assert caught.value.retry_after == pytest.approx(0.05)
    assert len(standin.seen) == 3  # the first try and two retries


def test_a_429_asking_for_a_wait_beyond_max_wait_is_raised_at_once(standin: StandIn) -> None:
    standin.queue(Reply(429, {"message": "Rate limit exceeded"}, headers=[("Retry-After", "3600")]))
    policy = RetryPolicy(max_wait=60.0)

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=policy) as braze:
            await braze.list_segments()

    with pytest.raises(RateLimited) as caught:
        asyncio.run(call())
    assert caught.value.retry_after == 3600.0
    assert len(standin.seen) == 1


def test_export_already_running_is_not_retried(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=20, settings=SimulatorSettings(export_delay_seconds=30.0))

    async def call() -> None:
        async with BrazeClient(box.braze_url, Secret(box.api_key), retry=QUICK) as braze:
            segment = (await braze.list_segments())[0]
            await braze.export_segment(segment.id, ["external_id"])
            await braze.export_segment(segment.id, ["external_id"])

    with pytest.raises(ExportAlreadyRunning) as caught:
        asyncio.run(call())
    assert caught.value.status == 429
    assert caught.value.after_lost_response is False
    assert box.sim.stats["requests"]["/users/export/segment"] == {"201": 1, "429": 1}


@pytest.mark.parametrize(
    ("reply", "running"),
    [
        (Reply(429, {"message": "Export already in progress"}), True),
        (Reply(429, {"message": "Too Many Requests"}), True),
        (Reply(429, {"message": "Too Many Requests"}, headers=[("X-RateLimit-Remaining", "0"),
                                                               ("X-RateLimit-Reset", "0.05")]),
         False),
        (Reply(429, {}, headers=[("X-Ratelimit-Retry-After", "0.05")]), False),
    ],
)  # fmt: skip
def test_export_429_variants(standin: StandIn, reply: Reply, running: bool) -> None:
    standin.queue(reply)
    standin.script = lambda seen: Reply(201, {"object_prefix": "p-1700000000", "url": None})

    async def call() -> str:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            return (await braze.export_segment("seg", ["external_id"])).object_prefix

    if running:
        with pytest.raises(ExportAlreadyRunning):
            asyncio.run(call())
        assert len(standin.seen) == 1
    else:
        assert asyncio.run(call()) == "p-1700000000"
        assert len(standin.seen) == 2


def test_export_retried_after_a_lost_answer_flags_the_429(standin: StandIn) -> None:
    standin.queue(Reply(drop=True), Reply(429, {"message": "An export is already running"}))

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.export_segment("seg", ["external_id"])

    with pytest.raises(ExportAlreadyRunning) as caught:
        asyncio.run(call())
    assert caught.value.after_lost_response is True
    assert "this request's own" in caught.value.message

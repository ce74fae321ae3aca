"""Rate-limit headers in every documented form, and the pacer's waits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import cast

import pytest

from bctui.braze import RateLimitInfo, WaitEvent, WaitReason, parse_rate_limit
from bctui.braze.ratelimit import RESET_MARGIN, Pacer, WaitTooLong, group_for

NOW = 1_700_000_000.0


def approx(value: float) -> float:
    """pytest.approx typed as the float it stands for (it compares equal to one)."""
    return cast(float, pytest.approx(value))


def test_epoch_reset_is_turned_into_seconds_from_now() -> None:
    info = parse_rate_limit(
        {"X-RateLimit-Limit": "250000", "X-RateLimit-Remaining": "249996",
         "X-RateLimit-Reset": str(int(NOW) + 42)},
        wall=NOW,
    )  # fmt: skip
    assert info == RateLimitInfo(limit=250000, remaining=249996, reset_in=42.0, retry_after=None)


def test_small_reset_is_a_delta() -> None:
    info = parse_rate_limit({"X-RateLimit-Reset": "3"}, wall=NOW)
    assert info.reset_in == 3.0
    assert parse_rate_limit({"X-RateLimit-Reset": "2.5"}, wall=NOW).reset_in == 2.5


@pytest.mark.parametrize(
    "names",
    [
        ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"),
        ("X-RATELIMIT-LIMIT", "X-RATELIMIT-REMAINING", "X-RATELIMIT-RESET"),
        ("X-Ratelimit-Limit", "x-RateLimit-Remaining", "X-rateLIMIT-reset"),
        ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
    ],
)
def test_header_names_in_any_case_and_spelling(names: tuple[str, str, str]) -> None:
    info = parse_rate_limit(dict(zip(names, ("3000", "12", "2"), strict=True)), wall=NOW)
    assert (info.limit, info.remaining, info.reset_in) == (3000, 12, 2.0)


def test_empty_values_count_as_missing() -> None:
    # Observed on a real 401: all three headers present but empty.
    info = parse_rate_limit(
        {"X-Ratelimit-Limit": "", "X-Ratelimit-Remaining": " ", "X-Ratelimit-Reset": ""},
        wall=NOW,
    )
    assert info == RateLimitInfo()


def test_missing_and_garbage_headers() -> None:
    assert parse_rate_limit({}, wall=NOW) == RateLimitInfo()
    info = parse_rate_limit(
        {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "nan", "X-RateLimit-Reset": "soon"},
        wall=NOW,
    )
    assert info == RateLimitInfo()


@pytest.mark.parametrize(
    "name", ["X-Ratelimit-Retry-After", "x-ratelimit-retry-after", "X-RATELIMIT-RETRY-AFTER"]
)
def test_retry_after_on_429_in_any_case(name: str) -> None:
    info = parse_rate_limit({name: "7"}, wall=NOW)
    assert info.retry_after == 7.0
    assert info.wait_hint == 7.0


def test_standard_retry_after_seconds_and_http_date() -> None:
    assert parse_rate_limit({"Retry-After": "5"}, wall=NOW).retry_after == 5.0
    when = format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
    assert parse_rate_limit({"Retry-After": when}, wall=NOW).retry_after == pytest.approx(30.0)
    assert parse_rate_limit({"Retry-After": "someday"}, wall=NOW).retry_after is None


def test_braze_retry_after_wins_over_standard_and_reset() -> None:
    info = parse_rate_limit(
        {"Retry-After": "50", "X-Ratelimit-Retry-After": "2", "X-RateLimit-Reset": "9"}, wall=NOW
    )
    assert info.wait_hint == 2.0
    assert parse_rate_limit({"X-RateLimit-Reset": "9"}, wall=NOW).wait_hint == 9.0
    assert parse_rate_limit({"X-RateLimit-Reset": str(int(NOW) - 5)}, wall=NOW).wait_hint == 0.0


def test_endpoint_groups() -> None:
    assert group_for("/users/track") == "users.track"
    assert group_for("/users/export/segment") == "shared"
    assert group_for("/segments/list") == "shared"


class FakeTime:
    """A clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _pacer(time: FakeTime, events: list[WaitEvent], max_wait: float = 1e9) -> Pacer:
    return Pacer(
        "users.track", events.append, clock=time.clock, sleep=time.sleep, max_wait=max_wait
    )


def test_pacer_waits_for_the_reset_when_the_window_is_used_up() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events)

    async def scenario() -> None:
        await pacer.acquire("/users/track")
        pacer.release(RateLimitInfo(limit=3, remaining=2, reset_in=3.0))
        await pacer.acquire("/users/track")
        await pacer.acquire("/users/track")
        assert time.slept == []  # two left in the window: no wait
        await pacer.acquire("/users/track")  # the window is used up: wait for its reset
        assert time.slept == [pytest.approx(3.0 + RESET_MARGIN)]
        # A fresh window of 3, less the two still in flight (they may land in it), less this one.
        assert pacer.remaining == 0

    asyncio.run(scenario())
    assert events == [
        WaitEvent(approx(3.0 + RESET_MARGIN), WaitReason.WINDOW, "/users/track", "limit 3")
    ]


def test_pacer_counts_requests_in_flight_against_remaining() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events)

    async def scenario() -> None:
        for _ in range(4):
            await pacer.acquire("/users/track")
        # The first answer says 5 are left, but 3 more are still in flight.
        pacer.release(RateLimitInfo(limit=10, remaining=5, reset_in=2.0))
        assert pacer.remaining == 2
        await pacer.acquire("/users/track")
        await pacer.acquire("/users/track")
        assert time.slept == []
        await pacer.acquire("/users/track")
        assert time.slept == [pytest.approx(2.0 + RESET_MARGIN)]

    asyncio.run(scenario())


def test_pacer_ignores_answers_from_a_finished_window() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events)

    async def scenario() -> None:
        await pacer.acquire("/users/track")
        pacer.release(RateLimitInfo(limit=10, remaining=9, reset_in=-1.0))
        assert pacer.remaining is None
        await pacer.acquire("/users/track")
        pacer.release(RateLimitInfo(limit=10, remaining=0, reset_in=None))
        # No reset known: nothing to wait for, the server's 429 will say how long.
        await pacer.acquire("/users/track")
        assert time.slept == []

    asyncio.run(scenario())


def test_a_429_pauses_every_sender_and_is_reported_once() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events)

    async def scenario() -> None:
        await pacer.acquire("/users/track")
        pacer.release(RateLimitInfo(limit=10, remaining=8, reset_in=1.0))
        pacer.pause(1.5, "/users/track", detail="retry after 1.50 s", window_ends=True)
        await asyncio.gather(*(pacer.acquire("/users/track") for _ in range(3)))
        assert time.now == pytest.approx(101.5 + RESET_MARGIN)
        assert pacer.remaining == 7  # a fresh window of 10, three taken

    asyncio.run(scenario())
    assert events == [
        WaitEvent(
            approx(1.5 + RESET_MARGIN),
            WaitReason.RATE_LIMITED,
            "/users/track",
            "retry after 1.50 s",
        )
    ]


def test_a_wait_beyond_max_wait_is_refused() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events, max_wait=60.0)

    async def scenario() -> None:
        await pacer.acquire("/users/track")
        pacer.release(RateLimitInfo(limit=1, remaining=0, reset_in=3600.0))
        with pytest.raises(WaitTooLong) as caught:
            await pacer.acquire("/users/track")
        assert caught.value.seconds == pytest.approx(3600.0 + RESET_MARGIN)

    asyncio.run(scenario())
    assert time.slept == []


def test_concurrency_is_the_allowed_rate_times_the_least_recent_round_trip() -> None:
    time, events = FakeTime(), list[WaitEvent]()
    pacer = _pacer(time, events)
    assert pacer.concurrency(512) == 32  # nothing known yet: a modest start
    pacer.observe_latency(0.3)
    assert pacer.concurrency(512) == 512  # a round trip but no rate-limit headers: the cap
    # A first answer late in a 3 s window must not read as 3,000 requests per 0.2 s.
    pacer.release(RateLimitInfo(limit=3000, remaining=100, reset_in=0.2))
    assert pacer.rate == pytest.approx(1000.0)
    assert pacer.concurrency(512) == 375  # 1,000/s × 0.3 s × 1.25
    assert pacer.concurrency(100) == 100
    pacer.observe_latency(0.9)  # one slow answer (queueing) does not raise it
    pacer.observe_latency(0.01)
    assert pacer.concurrency(512) == 13
    time.now += 6.0  # older than the span: the slower round trips of now count
    pacer.observe_latency(0.1)
    assert pacer.latency == pytest.approx(0.1)
    # An hourly limit spreads its budget: 250,000 / 3,600 s at 100 ms → 9 in flight.
    hourly = _pacer(FakeTime(), events)
    hourly.observe_latency(0.1)
    hourly.release(RateLimitInfo(limit=250_000, remaining=249_000, reset_in=3600.0))
    assert hourly.concurrency(512) == 9
    assert events == []

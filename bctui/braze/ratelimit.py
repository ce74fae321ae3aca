"""Braze rate-limit headers and the pacer every request of a client passes through."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

# A reset value above this is UTC epoch seconds; below it, seconds from now. Braze documents both
# readings (epoch in the general API limits page, a delta for MAU-priced /users/track customers).
EPOCH_THRESHOLD = 1e9

# Two header-derived reset times closer than this belong to the same window: delta resets are
# measured from the moment we read them and may be rounded to whole seconds by the server.
WINDOW_TOLERANCE = 1.0

# Waits for a window's reset end this much later, so a request never lands a hair early.
RESET_MARGIN = 0.01

# Concurrency sizing (Little's law): requests in flight = allowed rate × round trip, with
# headroom for jitter; a floor so a fast server is not starved, and a start before anything is
# known that the first answers correct within one round trip. The round trip is the least one
# seen lately, not the average: queueing that our own requests cause (at the server or in a busy
# event loop) would otherwise raise the concurrency that causes it.
CONCURRENCY_HEADROOM = 1.25
MIN_CONCURRENCY = 4
START_CONCURRENCY = 32
LATENCY_SPAN = 5.0  # seconds a low round trip is remembered (two halves of this)
# The shortest window Braze documents (3,000 requests per 3 s): a first answer that comes late in
# a window shows only the rest of it, which must not read as a far higher rate.
MIN_WINDOW = 3.0

TRACK_GROUP = "users.track"
SHARED_GROUP = "shared"


@dataclass(frozen=True)
class RateLimitInfo:
    """What one response said about the rate limit; None where a header was missing or empty."""

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None
    retry_after: float | None = None

    @property
    def wait_hint(self) -> float | None:
        """Seconds a 429 asks us to wait: the retry-after, else the time to the window reset."""
        if self.retry_after is not None:
            return max(0.0, self.retry_after)
        if self.reset_in is not None:
            return max(0.0, self.reset_in)
        return None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    text = value.strip().strip('"')
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _retry_after(value: str | None, wall: float) -> float | None:
    """Seconds from a Retry-After value: a number of seconds or an HTTP date."""
    seconds = _number(value)
    if seconds is not None or value is None or not value.strip():
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return when.timestamp() - wall


def parse_rate_limit(headers: Mapping[str, str], *, wall: float | None = None) -> RateLimitInfo:
    """Read the rate-limit headers of one response, whatever their case.

    Accepts `X-RateLimit-{Limit,Remaining,Reset}` and the un-prefixed `RateLimit-*` spelling Braze's
    MAU page uses; `X-Ratelimit-Retry-After` and, though Braze does not document it, a standard
    `Retry-After` (seconds or HTTP date). Empty or unparsable values count as missing.
    """
    wall = time.time() if wall is None else wall
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), value)

    def pick(*names: str) -> str | None:
        for name in names:
            value = lowered.get(name)
            if value is not None and value.strip():
                return value
        return None

    limit = _number(pick("x-ratelimit-limit", "ratelimit-limit"))
    remaining = _number(pick("x-ratelimit-remaining", "ratelimit-remaining"))
    reset = _number(pick("x-ratelimit-reset", "ratelimit-reset"))
    reset_in = None if reset is None else (reset - wall if reset > EPOCH_THRESHOLD else reset)
    retry_after = _retry_after(pick("x-ratelimit-retry-after", "retry-after"), wall)
    return RateLimitInfo(
        limit=None if limit is None else int(limit),
        remaining=None if remaining is None else int(remaining),
        reset_in=reset_in,
        retry_after=retry_after,
    )


def group_for(path: str) -> str:
    """The rate-limit pool of an endpoint: /users/track has its own, the others share one."""
    return TRACK_GROUP if path.rstrip("/") == "/users/track" else SHARED_GROUP


class WaitReason(StrEnum):
    """Why a request is waiting."""

    WINDOW = "rate-limit window used up"
    RATE_LIMITED = "rate limited (429)"
    SERVER_ERROR = "server error"
    TRANSPORT = "connection problem"


@dataclass(frozen=True)
class WaitEvent:
    """A wait the client is about to sit out, for the engine's "rate-limit wait" log lines."""

    seconds: float
    reason: WaitReason
    endpoint: str
    detail: str = ""


OnWait = Callable[[WaitEvent], None]


class WaitTooLong(Exception):
    """The pacer would have to wait longer than its `max_wait`."""

    def __init__(self, seconds: float, reason: WaitReason) -> None:
        self.seconds = seconds
        self.reason = reason
        super().__init__(f"{reason}: would wait {seconds:.0f} s")


class Pacer:
    """The gate all concurrent requests of one rate-limit pool pass through.

    It keeps an estimate of the requests left in the server's current window: taken from
    `X-RateLimit-Remaining` minus the requests still in flight, and decremented for every request
    it lets through. At zero, senders wait until the window's reset; after a 429 every sender
    pauses until Braze's retry-after (or the reset, or a backoff). Each distinct wait is reported
    once through `on_wait`. Not thread-safe: one pacer lives in one event loop.
    """

    def __init__(
        self,
        group: str,
        on_wait: OnWait | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait: float = math.inf,
    ) -> None:
        self.group = group
        self.max_wait = max_wait
        self._on_wait = on_wait
        self._clock = clock
        self._sleep = sleep
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._paused_until = 0.0
        self._pause_detail = ""
        self._in_flight = 0
        self._reported_until = 0.0
        self._window: float | None = None  # the longest reset seen: the window's length
        # The least round trip of the current and of the previous half-span.
        self._rtt_now: float | None = None
        self._rtt_before: float | None = None
        self._rtt_since = 0.0
        self.waits = 0
        self.waited_seconds = 0.0

    @property
    def in_flight(self) -> int:
        """Requests let through and not yet released."""
        return self._in_flight

    @property
    def remaining(self) -> int | None:
        """The current estimate of requests left in this window (None: unknown)."""
        return self._remaining

    @property
    def latency(self) -> float | None:
        """The least round trip of an answered request lately, in seconds (None: none yet)."""
        if self._rtt_before is None:
            return self._rtt_now
        if self._rtt_now is None:
            return self._rtt_before
        return min(self._rtt_now, self._rtt_before)

    @property
    def rate(self) -> float | None:
        """Requests per second the server allows over a window (None until its headers said)."""
        if self._limit is None or self._window is None:
            return None
        return self._limit / max(self._window, MIN_WINDOW)

    def observe_latency(self, seconds: float) -> None:
        """One answered request's round trip."""
        now = self._clock()
        if now - self._rtt_since >= LATENCY_SPAN / 2:
            # A half-span or more since this one began: it becomes the previous one, or, after a
            # whole span of silence, is forgotten too.
            recent = now - self._rtt_since < LATENCY_SPAN
            self._rtt_before = self._rtt_now if recent else None
            self._rtt_now, self._rtt_since = None, now
        if self._rtt_now is None or seconds < self._rtt_now:
            self._rtt_now = seconds

    def concurrency(self, cap: int) -> int:
        """How many requests to keep in flight to use the allowed rate at the measured latency,
        at most `cap`: enough at 300 ms, no more than needed at 10 ms. Without rate-limit
        headers the cap; before any answer a modest start."""
        latency = self.latency
        if latency is None:
            return min(cap, START_CONCURRENCY)
        rate = self.rate
        if rate is None:
            return cap
        wanted = math.ceil(rate * latency * CONCURRENCY_HEADROOM)
        return max(1, min(cap, max(MIN_CONCURRENCY, wanted)))

    async def acquire(self, path: str) -> None:
        """Wait until a request to `path` may be sent, then count it as in flight."""
        while True:
            now = self._clock()
            self._roll(now)
            until, reason, detail = 0.0, WaitReason.WINDOW, ""
            exhausted = self._remaining is not None and self._remaining <= 0
            if self._paused_until > now:
                until, reason = self._paused_until, WaitReason.RATE_LIMITED
                detail = self._pause_detail
            elif exhausted and self._reset_at is not None:
                until = self._reset_at
                detail = f"limit {self._limit}" if self._limit is not None else ""
            if until <= now:
                break
            if until - now > self.max_wait:
                raise WaitTooLong(until - now, reason)
            self._report(until - now, reason, path, detail, until)
            self.waits += 1
            self.waited_seconds += until - now
            await self._sleep(until - now)
        self._in_flight += 1
        if self._remaining is not None:
            self._remaining -= 1

    def release(self, info: RateLimitInfo | None) -> None:
        """A request finished; `info` is what its response said (None: no response)."""
        if info is not None:
            self._observe(info, self._clock())
        self._in_flight = max(0, self._in_flight - 1)

    def pause(
        self, seconds: float, path: str, *, detail: str = "", window_ends: bool = False
    ) -> None:
        """After a 429: hold every sender for `seconds`.

        `window_ends` says the wait comes from Braze (retry-after or reset), so the window is over
        when it ends and a full window's budget is available again.
        """
        now = self._clock()
        until = now + max(0.0, seconds) + (RESET_MARGIN if window_ends else 0.0)
        if until > self._paused_until:
            self._paused_until = until
            self._pause_detail = detail
        if window_ends:
            self._remaining = 0
            self._reset_at = max(self._reset_at or 0.0, until)
        if until > now:
            self._report(until - now, WaitReason.RATE_LIMITED, path, detail, until)

    def _roll(self, now: float) -> None:
        if self._reset_at is not None and now >= self._reset_at:
            self._reset_at = None
            # Requests still in flight may land in the new window; the first answer from it
            # corrects the estimate either way.
            self._remaining = None if self._limit is None else self._limit - self._in_flight

    def _observe(self, info: RateLimitInfo, now: float) -> None:
        if info.limit is not None and info.limit > 0:
            self._limit = info.limit
        if info.remaining is None:
            return
        # Requests sent after this one may already be counted by the server or not; assume not.
        others = max(0, self._in_flight - 1)
        estimate = info.remaining - others
        if info.reset_in is None:
            if self._remaining is None or estimate < self._remaining:
                self._remaining = estimate
            return
        if info.reset_in <= 0:
            return  # a response from a window that is already over
        if self._window is None or info.reset_in > self._window:
            self._window = info.reset_in
        reset_at = now + info.reset_in + RESET_MARGIN
        if self._reset_at is None or reset_at > self._reset_at + WINDOW_TOLERANCE:
            self._reset_at = reset_at
            self._remaining = estimate
        elif self._remaining is None or estimate < self._remaining:
            self._remaining = estimate

    def _report(
        self, seconds: float, reason: WaitReason, path: str, detail: str, until: float
    ) -> None:
        if until <= self._reported_until + 0.01:
            return
        self._reported_until = until
        if self._on_wait is not None:
            self._on_wait(WaitEvent(seconds, reason, path, detail))

"""Fixed-window request limits, as Braze applies them per workspace (reference §5)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LimitDecision:
    """The outcome of counting one request against a limit."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the current window ends

    @property
    def reset_epoch(self) -> int:
        """`X-RateLimit-Reset`: the window's end in whole epoch seconds (rounded up)."""
        return math.ceil(self.reset_at)

    def retry_after(self, now: float) -> int:
        """`X-Ratelimit-Retry-After`: whole seconds until requests are accepted again (>= 1)."""
        return max(1, math.ceil(self.reset_at - now))


class FixedWindowLimiter:
    """`limit` requests per `window` seconds, windows aligned to multiples of `window`.

    Aligning to the epoch makes an hourly window reset on the clock hour, as Braze documents
    ("Rate limits reset on the clock hour, not on a rolling window").
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._window_start = -1.0
        self._used = 0

    def hit(self, now: float) -> LimitDecision:
        """Count one request at `now`; refused requests are not counted."""
        start = math.floor(now / self.window) * self.window
        if start != self._window_start:
            self._window_start = start
            self._used = 0
        reset_at = start + self.window
        if self._used >= self.limit:
            return LimitDecision(False, self.limit, 0, reset_at)
        self._used += 1
        return LimitDecision(True, self.limit, self.limit - self._used, reset_at)

"""The one retry/backoff policy for 429s, 5xx answers and transport errors."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry.

    `max_attempts` bounds the tries of one request that fails with 5xx or a transport error
    (timeout, refused or dropped connection). A 429 is flow control, not failure: it is retried up
    to `max_rate_limited` times, each time waiting what Braze asks (`X-Ratelimit-Retry-After` or the
    window reset) or, without such a header, a jittered backoff; a single wait longer than
    `max_wait` is not sat out but raised as `RateLimited`. Backoff is "full jitter":
    uniform(0, min(cap, base * 2**(n-1))) before the n-th retry.
    """

    max_attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    max_rate_limited: int = 100
    max_wait: float = 3900.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_rate_limited < 0:
            raise ValueError("max_attempts must be >= 1 and max_rate_limited >= 0")
        if self.base < 0 or self.cap < 0 or self.max_wait < 0:
            raise ValueError("base, cap and max_wait must not be negative")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, retry - 1))
        return self.rng.uniform(0.0, ceiling)

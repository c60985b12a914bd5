"""Per-app request rate limits of the /v1 API: one token bucket per app, in memory.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second;
each authenticated /v1 call takes one. An empty bucket answers 429
`rate_limited` with a Retry-After of whole seconds (at least 1) until a token
is back. Buckets are per process: with several gateway nodes each enforces
its own share.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import trio

MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`take(key)` is 0.0 when allowed, else the seconds until a token is back."""

    def __init__(
        self, rate: float, burst: int, *, now: Callable[[], float] = trio.current_time
    ) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        if not self.enabled:
            return 0.0
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()  # every bucket restarts full: fail open, stay bounded
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after_header(wait: float) -> str:
    """Whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait)))

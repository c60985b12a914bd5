"""Keeping a vendor's trouble to itself: retry with backoff, a bound on concurrent
requests, and a circuit breaker, each per (app, vendor).

Every time here is Trio's clock (`trio.current_time()`), so tests drive them
with `trio.testing.MockClock`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

import trio


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a transient answer up to `max_attempts` in all, after a backoff of
    `base_delay * multiplier**(n-1)` seconds (jittered down to half) or the vendor's
    Retry-After when longer. A wait longer than `max_delay` is not slept: the
    transient result goes back to the caller to reschedule."""

    max_attempts: int = 3
    base_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 30.0
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """How long to wait before attempt `attempt + 1`; None: do not retry now."""
        if attempt >= self.max_attempts:
            return None
        backoff = self.base_delay * self.multiplier ** (attempt - 1)
        backoff *= 0.5 + 0.5 * self.jitter()
        wait = max(backoff, retry_after or 0.0)
        return wait if wait <= self.max_delay else None


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `failure_threshold` failed calls in a row; while open, calls are
    refused at once for `open_seconds` (doubling on each failed probe, up to
    `max_open_seconds`); then one probe call decides: success closes it."""

    def __init__(
        self,
        failure_threshold: int = 5,
        open_seconds: float = 10.0,
        max_open_seconds: float = 300.0,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self.max_open_seconds = max_open_seconds
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.opened = 0  # times it opened, for statistics
        self._current_open = open_seconds
        self._retry_at = 0.0
        self._probing = False

    def admit(self) -> float | None:
        """None if a call may go now (the caller reports its outcome), else the seconds
        until one may."""
        if self.state is BreakerState.CLOSED:
            return None
        now = trio.current_time()
        if self.state is BreakerState.OPEN and now >= self._retry_at:
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return None
        return max(self._retry_at - now, 0.0) or self._current_open

    def succeeded(self) -> None:
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._probing = False
        self._current_open = self.open_seconds

    def abandoned(self) -> None:
        """An admitted call ended without an outcome (cancelled): let another probe."""
        self._probing = False

    def failed(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._current_open = min(self._current_open * 2, self.max_open_seconds)
            self._open()
            return
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened += 1
        self._probing = False
        self._retry_at = trio.current_time() + self._current_open


class Bulkhead:
    """At most `max_concurrent` calls at once, and at most `max_waiting` waiting
    for a turn; past that a call is refused at once (`acquire` returns False)."""

    def __init__(self, max_concurrent: int = 8, max_waiting: int = 1000) -> None:
        self.max_concurrent = max_concurrent
        self._slots = trio.Semaphore(max_concurrent)
        self.max_waiting = max_waiting
        self.waiting = 0
        self.refused = 0

    @property
    def in_flight(self) -> int:
        return self.max_concurrent - self._slots.value

    async def acquire(self) -> bool:
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            pass
        else:
            await trio.lowlevel.checkpoint()
            return True
        if self.waiting >= self.max_waiting:
            self.refused += 1
            return False
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        return True

    def release(self) -> None:
        self._slots.release()

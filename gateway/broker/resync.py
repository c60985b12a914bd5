"""Runs the node's resync hook when asked, one run at a time, coalescing requests.

A resync means "re-read the unacked deliveries of your devices from the
store": pub/sub is at-most-once, so whenever hints may have been lost (the
subscription was (re)established, or the inbox overflowed) the store is
read again. Requests arriving during a run cause exactly one more run.
Overflow resyncs run at most once per `overflow_interval`: an overloaded
node must not add a store read per dropped hint.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from .backoff import Backoff

log = logging.getLogger("pushgate.broker")

# Called with the reason: "subscribed" (first time), "resubscribed", "overflow".
ResyncHook = Callable[[str], Awaitable[None]]

SUBSCRIBED = "subscribed"
RESUBSCRIBED = "resubscribed"
OVERFLOW = "overflow"


class Resyncer:
    def __init__(self, hook: ResyncHook | None, backoff: Backoff, overflow_interval: float) -> None:
        self._hook = hook
        self._backoff = backoff
        self._overflow_interval = overflow_interval
        self._last_overflow_run = -float("inf")
        self._pending: str | None = None
        self._wake = trio.Event()
        self.runs = 0  # completed runs of the hook
        self.failures = 0

    def request(self, reason: str) -> None:
        # A resubscription is the stronger reason to report: keep it if both come.
        if self._pending is None or reason != OVERFLOW:
            self._pending = reason
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            if self._pending == OVERFLOW:
                # More overflows meanwhile are covered by this one run.
                await trio.sleep_until(self._last_overflow_run + self._overflow_interval)
                self._last_overflow_run = trio.current_time()
            self._wake = trio.Event()
            reason, self._pending = self._pending, None
            if reason is None or self._hook is None:
                continue
            try:
                await self._hook(reason)
            except Exception as exc:
                # The hook is the node's code (a store read). Retry: until it
                # succeeds, only the periodic sweep would find lost hints.
                self.failures += 1
                log.warning(
                    "event=broker_resync_failed reason=%s error=%s", reason, type(exc).__name__
                )
                await trio.sleep(self._backoff.next_delay())
                self.request(reason)
                continue
            self._backoff.reset()
            self.runs += 1

"""One connection's acks on their way to the store, bounded in ids, in flight and in rate.

An `ack` frame gets no reply when it is recorded, so the connection need
not wait for the commit. But a device must not be able to make the gateway
hold or write without bound: here its acks are counted in message ids (a
frame may carry 10,000), at most `MAX_IN_FLIGHT` of them wait for a commit
at once, and at most `rate` ids per second are read (a token bucket, which
counts every id the device sent, well-formed or not).
Past either bound the connection's reader waits, so its socket is no longer
read: the backpressure falls on the one device, never on another app.

Ids that cannot be message ids (gateway.ids) never reach the store; repeated
ids in one frame go once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from gateway.ids import is_message_id
from protocol.frames import MAX_ACK_IDS

MAX_IN_FLIGHT = MAX_ACK_IDS  # one full frame's worth of ids waiting for its commit


class AckSink(Protocol):
    async def ack(
        self,
        app_id: str,
        device_id: str,
        message_ids: Sequence[str],
        done: Callable[[Sequence[str], int, BaseException | None], None],
    ) -> None:
        """Queue the ack for the next group commit (waiting for room); `done` after it."""


class AckFlow:
    __slots__ = (
        "_app_id",
        "_burst",
        "_committed",
        "_device_id",
        "_in_flight",
        "_on_failed",
        "_rate",
        "_sink",
        "_stamp",
        "_tokens",
    )

    def __init__(
        self,
        sink: AckSink,
        app_id: str,
        device_id: str,
        *,
        rate: float,
        on_failed: Callable[[BaseException], None],
    ) -> None:
        self._sink = sink
        self._app_id = app_id
        self._device_id = device_id
        self._rate = rate
        self._burst = max(rate, float(MAX_ACK_IDS))
        self._tokens = self._burst
        self._stamp = trio.current_time()
        self._in_flight = 0
        self._committed: trio.Event | None = None
        self._on_failed = on_failed

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def ack(self, message_ids: Sequence[str]) -> None:
        """Send these ids on to the store; returns once they are queued there (not committed)."""
        # Every id the device sent counts against its rate, junk included: reading
        # and sorting out a frame is paid before anything else.
        await self._take(len(message_ids))
        ids = [i for i in dict.fromkeys(message_ids) if is_message_id(i)]
        if not ids:
            return
        while self._in_flight and self._in_flight + len(ids) > MAX_IN_FLIGHT:
            if self._committed is None:
                self._committed = trio.Event()
            await self._committed.wait()
        self._in_flight += len(ids)
        await self._sink.ack(self._app_id, self._device_id, ids, self._done)

    async def _take(self, count: int) -> None:
        """Wait for `count` tokens of the rate limit (a checkpoint either way)."""
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < count:
            await trio.sleep((count - self._tokens) / self._rate)
            self._tokens = float(count)
            self._stamp = trio.current_time()
        self._tokens -= count

    def _done(self, message_ids: Sequence[str], acked: int, error: BaseException | None) -> None:
        """On the Trio thread, once the store committed (or failed) these ids."""
        self._in_flight -= len(message_ids)
        if self._committed is not None:
            self._committed.set()
            self._committed = None
        if error is not None:
            self._on_failed(error)

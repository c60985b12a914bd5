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

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import trio

from gateway.ids import is_message_id
from gateway.store import StoreUnavailable
from protocol.frames import MAX_ACK_IDS

log = logging.getLogger("pushgate.session")

MAX_IN_FLIGHT = MAX_ACK_IDS  # one full frame's worth of ids waiting for its commit


AckDone = Callable[[Sequence[str], int, BaseException | None], None]


class AckSink(Protocol):
    def ack_nowait(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone
    ) -> None:
        """Queue the ack for the next group commit; trio.WouldBlock if there is no room."""

    async def ack(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone
    ) -> None:
        """`ack_nowait`, first waiting for room."""


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
        on_failed: Callable[[str, StoreUnavailable], None],
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

    def ack_nowait(self, message_ids: Sequence[str]) -> None:
        """Pass an ack frame's ids on at once; trio.WouldBlock if a bound says wait.

        The usual case (tokens left, room everywhere) costs no task switch.
        """
        # Every id the device sent counts against its rate, junk included: reading
        # and sorting out a frame is paid before anything else.
        self._refill()
        if self._tokens < len(message_ids):
            raise trio.WouldBlock
        ids = _clean(message_ids)
        if ids and self._in_flight and self._in_flight + len(ids) > MAX_IN_FLIGHT:
            raise trio.WouldBlock
        if ids:
            self._sink.ack_nowait(self._app_id, self._device_id, ids, self._done)
            self._in_flight += len(ids)
        self._tokens -= len(message_ids)

    async def receive(self, message_ids: Sequence[str]) -> None:
        """An ack frame: passed on at once if it can be (the usual case: no task switch),
        else after waiting, while this connection is not read."""
        try:
            self.ack_nowait(message_ids)
        except trio.WouldBlock:
            await self.ack(message_ids)

    async def ack(self, message_ids: Sequence[str]) -> None:
        """`ack_nowait`, first waiting for the rate, the ids in flight and the store's room."""
        self._refill()
        if self._tokens < len(message_ids):
            await trio.sleep((len(message_ids) - self._tokens) / self._rate)
            self._refill()
        self._tokens -= len(message_ids)  # may go below zero: the next frame waits for it
        ids = _clean(message_ids)
        if not ids:
            await trio.lowlevel.checkpoint()
            return
        while self._in_flight and self._in_flight + len(ids) > MAX_IN_FLIGHT:
            if self._committed is None:
                self._committed = trio.Event()
            await self._committed.wait()
        self._in_flight += len(ids)
        try:
            await self._sink.ack(self._app_id, self._device_id, ids, self._done)
        except BaseException:
            self._in_flight -= len(ids)
            raise

    def _refill(self) -> None:
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def _done(self, message_ids: Sequence[str], acked: int, error: BaseException | None) -> None:
        """On the Trio thread, once the store committed (or failed) these ids."""
        self._in_flight -= len(message_ids)
        if self._committed is not None:
            self._committed.set()
            self._committed = None
        if isinstance(error, StoreUnavailable):
            self._on_failed("ack", error)  # not recorded (a full disk): the device is told
        elif error is not None:
            log.error("event=ack_failed device=%s error=%r", self._device_id, str(error)[:200])


def _clean(message_ids: Sequence[str]) -> list[str]:
    """The ids that can be message ids, each once."""
    return [i for i in dict.fromkeys(message_ids) if is_message_id(i)]

"""One connection's outgoing frames: a bounded queue, and how it reaches the socket.

Fan-out never awaits a device: the hub and the session `put` frames here,
and the connection's owner learns at once when the queue is full (a slow
consumer). Writing costs no task per connection: the `Flusher` (one task per
Trio run) calls `flush()`, which writes what is queued with non-blocking
writes, so frames queued in one scheduling round leave in one write. Only
when the socket does not take everything does the outbox start a *drain*
task of its own, which awaits the rest under the send timeout (a peer that
stops reading cannot hold the gateway hostage), sends the close if one is
queued, and ends when the queue is empty. The flusher and the drain task
never write to one connection at the same time: `state` says which may.

Pushes are queued as store `Message`s and encoded when written, so a copy
that expired or was dropped (revoked, unbound) meanwhile is never sent. What
was pulled from the store (a backlog page) does not count against the limit:
pages are bounded by their own size, and a device that was away is never
dropped as slow for having a backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import msgpack
import trio

from gateway.clock import Clock
from gateway.flusher import Flusher
from gateway.store import Message
from gateway.transports.base import Transport
from protocol import Frame, Push, encode

log = logging.getLogger("pushgate.outbox")

WRITE_FRAMES = 256  # frames per write, at most
# Bytes per write, at most: what is handed to the socket can no longer be
# dropped (an unbind, a revocation), so little is handed over at once.
WRITE_BYTES = 65_536
CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Close:
    """The last item of an outbox: send `frame` (if any), then close with `code`."""

    frame: Frame | None
    code: int


class Writing(Enum):
    IDLE = "idle"  # nothing to write, or the socket took everything
    SCHEDULED = "scheduled"  # waiting for the flusher's turn
    DRAINING = "draining"  # a drain task owns the socket (it was full, or a close is due)
    DONE = "done"  # the connection ended: nothing more is written


@dataclass(frozen=True, slots=True)
class OutboxStatistics:
    state: Writing
    queued: int  # frames (the close included) not yet handed to the socket
    pulled: int  # of which came from the store (backlog pages)


class OutboxOwner(Protocol):
    """What the outbox tells its connection (each call never awaits, never raises)."""

    def written(self, message_ids: Sequence[str]) -> None:
        """These pushes are on the wire."""

    def lost(self, why: str, *, expected: bool) -> None:
        """The socket broke or stalled: end the connection now."""

    def finished(self) -> None:
        """The close was sent: end the connection."""

    def drained(self) -> None:
        """Pulled frames were taken to be written (`pulled` went down)."""


Item = Frame | Message | Close


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    """What every outbox shares (one object, not four fields per connection)."""

    flusher: Flusher
    clock: Clock
    limit: int  # frames queued (backlog pages not counted) before a slow consumer is dropped
    send_timeout: float  # seconds one write may stall


class Outbox:
    __slots__ = (
        "_config",
        "_drain_scope",
        "_items",
        "_owner",
        "_pending_ids",
        "_transport",
        "pulled",
        "skip",
        "state",
    )

    def __init__(self, transport: Transport, owner: OutboxOwner, config: OutboxConfig) -> None:
        self._transport = transport
        self._owner = owner
        self._config = config
        # A list, not a deque: an empty deque costs 600 bytes per idle connection.
        self._items: list[Item] = []
        self._pending_ids: Sequence[str] = ()  # pushes handed to the socket, not all out yet
        self._drain_scope: trio.CancelScope | None = None
        self.state = Writing.IDLE
        # Queued items that came from the store (backlog pages). Pages are
        # queued ahead of live frames (those wait while a backlog is paged), so
        # the first items written are counted as pulled ones.
        self.pulled = 0
        # Message ids never to write (revoked while queued somewhere upstream).
        self.skip: Container[str] = ()

    # --- queueing (never awaits) ---------------------------------------------------

    def put(self, item: Frame | Message) -> bool:
        """Queue a frame; False when the outbox is full (the connection is a slow consumer)."""
        if len(self._items) - self.pulled >= self._config.limit:
            return False
        self._items.append(item)
        self._kick()
        return True

    def put_pulled(self, messages: list[Message]) -> None:
        """Queue a page read from the store (bounded by its size, not by the limit)."""
        self._items.extend(messages)
        self.pulled += len(messages)
        self._kick()

    def close(self, frame: Frame | None, code: int, *, discard: bool = False) -> None:
        """Send `frame` after what is queued (or instead of it: `discard`), then close."""
        if discard:
            self._items.clear()
            self.pulled = 0
        self._items.append(Close(frame, code))
        self._kick()

    def drop(self, unwanted: Callable[[Message], bool]) -> int:
        """Remove queued messages for which `unwanted(message)` is true; how many went."""
        kept = [i for i in self._items if not (isinstance(i, Message) and unwanted(i))]
        removed = len(self._items) - len(kept)
        if removed:
            self._items[:] = kept  # in place: a drain task may hold this list
            self.pulled = min(self.pulled, len(kept))
        return removed

    def statistics(self) -> OutboxStatistics:
        return OutboxStatistics(self.state, len(self._items), self.pulled)

    # --- writing ---------------------------------------------------------------------

    def flush(self) -> None:
        """The flusher's turn: write what is queued now, without waiting."""
        if self.state is not Writing.SCHEDULED:
            return
        self.state = Writing.IDLE
        transport = self._transport
        try:
            while self._items:
                payloads, ids, close = self._take()
                if close is None and not payloads:
                    continue
                out = not payloads or transport.write_nowait(transport.wire(payloads))
                if out and close is None:
                    self._written(ids)
                    continue
                # The socket is full, or a close is due: a drain task awaits the rest.
                self._pending_ids = ids
                self._start_drain(close)
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._owner.lost("connection lost while writing", expected=True)
        except Exception:  # a bug here must not reach the flusher, which serves everyone
            log.exception("event=flush_failed")
            self._owner.lost("flush failed", expected=False)

    async def finish(self) -> None:
        """From the connection's own task: write out what is queued, the close last.

        If a drain task owns the socket, wait for it: it ends the connection.
        """
        if self.state is Writing.DRAINING:
            await trio.sleep_forever()
        if self.state is Writing.DONE:
            return
        self.state = Writing.DRAINING
        await self._drain(None)

    def done(self) -> None:
        """The connection ended: stop any drain task; nothing more is written."""
        self.state = Writing.DONE
        if self._drain_scope is not None:
            self._drain_scope.cancel()

    def _kick(self) -> None:
        if self.state is Writing.IDLE:
            self.state = Writing.SCHEDULED
            self._config.flusher.schedule(self)

    def _start_drain(self, close: Close | None) -> None:
        """A task of its own to await the socket: in the flusher's nursery, none per connection."""
        self.state = Writing.DRAINING
        scope = self._drain_scope = trio.CancelScope()

        async def drain() -> None:
            try:
                with scope:
                    await self._drain(close)
            except Exception:  # a bug here must not reach the flusher's nursery
                log.exception("event=drain_failed")
                self._owner.lost("drain failed", expected=False)
            finally:
                if self._drain_scope is scope:
                    self._drain_scope = None

        self._config.flusher.start_soon(drain)

    async def _drain(self, close: Close | None) -> None:
        """Own the socket until the queue is empty, or the close is sent."""
        transport = self._transport
        while True:
            try:
                with trio.fail_after(self._config.send_timeout):
                    await transport.flush()
            except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                self._owner.lost("send failed or timed out", expected=False)
                return
            ids, self._pending_ids = self._pending_ids, ()
            self._written(ids)
            if close is not None:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    try:
                        await transport.close(close.code)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                self.state = Writing.DONE
                self._owner.finished()
                return
            if not self._items:
                if self.state is Writing.DRAINING:
                    self.state = Writing.IDLE
                return
            payloads, self._pending_ids, close = self._take()
            if payloads:
                try:
                    transport.write_nowait(transport.wire(payloads))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self._owner.lost("connection lost while writing", expected=True)
                    return

    def _take(self) -> tuple[list[bytes], list[str], Close | None]:
        """Encode the next frames, up to one write: (payloads, push ids, the close if reached)."""
        items = self._items
        now = self._config.clock.now_ms()
        payloads: list[bytes] = []
        ids: list[str] = []
        close: Close | None = None
        size = taken = 0
        skip = self.skip
        for item in items:
            if len(payloads) >= WRITE_FRAMES or size >= WRITE_BYTES:
                break
            taken += 1
            if isinstance(item, Message):
                if item.expires_at <= now or item.message_id in skip:
                    continue  # an expired or revoked message is never sent
                ids.append(item.message_id)
                payload = encode_push(item)
            elif isinstance(item, Close):
                close = item
                if item.frame is not None:
                    payloads.append(encode(item.frame))
                break
            else:
                payload = encode(item)
            payloads.append(payload)
            size += len(payload)
        del items[:taken]
        if self.pulled:
            self.pulled = max(0, self.pulled - taken)
            self._owner.drained()
        return payloads, ids, close

    def _written(self, ids: Sequence[str]) -> None:
        if ids:
            self._owner.written(ids)


# One message goes to every device of a user or a broadcast: consecutive
# connections writing the same object reuse its encoding. And the messages of
# one multiple push (up to 1000, one per device) differ only in their IDs: what
# follows the IDs (type, title, content, ext) is encoded once and reused. The
# bytes are those of `encode(Push(...))`, a map in the same key order
# (tests/gateway/test_encode_push.py).
_PACKER = msgpack.Packer(use_bin_type=True)


def packb(value: object) -> bytes:
    data: bytes = _PACKER.pack(value)
    return data


_last_message: Message | None = None
_last_encoded = b""
_tail_key: tuple[object, ...] | None = None
_tail = b""
_HEAD = b"\x89" + packb("t") + packb(Push.T) + packb("id")  # a map of 9 entries
_MSG_KEY = packb("msg_key")
_CREATED = packb("created")
_EXPIRES = packb("expires")


def encode_push(message: Message) -> bytes:
    global _last_message, _last_encoded, _tail_key, _tail
    if message is _last_message:
        return _last_encoded
    m = message
    key = (m.push_type, m.title, m.content, m.ext)
    if key != _tail_key:
        _tail_key = key
        _tail = b"".join(
            (
                packb("push_type"),
                packb(m.push_type),
                packb("title"),
                packb(m.title),
                packb("content"),
                packb(m.content),
                packb("ext"),
                packb(dict(m.ext)),
            )
        )
    pack = _PACKER.pack
    _last_encoded = b"".join(
        (
            _HEAD,
            pack(m.message_id),
            _MSG_KEY,
            pack(m.msg_key),
            _tail,
            _CREATED,
            pack(m.created_at),
            _EXPIRES,
            pack(m.expires_at),
        )
    )
    _last_message = message
    return _last_encoded

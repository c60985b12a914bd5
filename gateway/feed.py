"""What one connection's device should receive, and from where.

Messages reach a connection two ways: routed live by the hub as they are
committed, and read from the store page by page (its backlog at hello, the
catch-up after a bind; backlog.py decides which pages and what each one
releases). The feed merges the two into the outbox, and filters both: a
revoked message, or a user message of a user the device is no longer bound
to, is never queued (and is removed if it already is).

Pages are read by a helper task in the flusher's nursery while there are
pages left (an idle connection has none), the next one only once the
outbox has sent most of the last.
"""

from __future__ import annotations

import logging
from typing import Protocol

import trio

from gateway.backlog import Backlog, PageRequest
from gateway.flusher import Flusher
from gateway.hub import Connection, Hub
from gateway.outbox import Outbox
from gateway.store import Message
from protocol import Bound, Frame

log = logging.getLogger("pushgate.session")

DROPPED_LIMIT = 1024  # revoked ids remembered, so a copy read before the revocation is skipped
_NOT_READ_YET = "\0"  # the user while the device is being recorded: never a valid ID


class FeedOwner(Connection, Protocol):
    @property
    def closing(self) -> bool: ...

    def send(self, frame: Frame) -> None:
        """Queue a frame (a reply) for the device."""

    def page_failed(self, error: Exception) -> None:
        """A page could not be read: the connection should end (the device retries)."""


class Feed:
    __slots__ = (
        "_backlog",
        "_binding",
        "_dropped",
        "_flusher",
        "_hub",
        "_outbox",
        "_owner",
        "_want",
        "user_id",
    )

    def __init__(self, owner: FeedOwner, hub: Hub, outbox: Outbox, flusher: Flusher) -> None:
        self._owner = owner
        self._hub = hub
        self._outbox = outbox
        self._flusher = flusher
        self.user_id: str | None = None
        self._backlog: Backlog | None = None  # while pages are left to read
        self._want: trio.Event | None = None  # while the page reader runs
        self._dropped: dict[str, None] | None = None  # revoked ids (an insertion-ordered set)
        self._binding: str | None = None  # the user of the device's own bind being committed

    def start(self, page_size: int) -> PageRequest:
        """Hello: hold what is routed until the first page (read with the hello) is taken."""
        self.user_id = _NOT_READ_YET
        self._backlog = Backlog(page_size)
        return self._backlog.first()

    def attached(self, user_id: str | None, request: PageRequest, page: list[Message]) -> None:
        """The device is recorded: its user then, and the first page of its backlog."""
        if self.user_id == _NOT_READ_YET:  # else a bind or unbind came since, and is newer
            self.user_id = user_id
        self.take(request, page, user_id)

    def take(self, request: PageRequest, page: list[Message], user_at_read: str | None) -> None:
        """A page was read: queue what it releases; read on if pages are left."""
        backlog = self._backlog
        if backlog is None or self._owner.closing:
            return
        queue = backlog.apply(request, page, user_at_read)
        self._outbox.put_pulled([m for m in queue if self.wants(m)])
        self._read_on()

    def _read_on(self) -> None:
        """Start the page reader if pages are left and none runs; forget a finished backlog."""
        backlog = self._backlog
        if backlog is not None and backlog.done:
            self._backlog = None
        elif backlog is not None and self._want is None and not self._owner.closing:
            if backlog.reading:
                return  # the hello's first page: its taking reads on
            self._want = trio.Event()
            self._flusher.start_soon(self._read_pages)

    def live(self, message: Message) -> Message | None:
        """A message routed now: itself if it is to be queued now."""
        if self._backlog is not None and not self._backlog.live(message):
            return None  # a page brings it
        return message if self.wants(message) else None

    def wants(self, message: Message) -> bool:
        if self._dropped is not None and message.message_id in self._dropped:
            return False
        return message.delivery_type != "user" or message.target_id == self.user_id

    def drop(self, message_id: str) -> None:
        dropped = self._dropped
        if dropped is None:
            dropped = self._dropped = self._outbox.skip = {}
        dropped[message_id] = None
        if len(dropped) > DROPPED_LIMIT:
            del dropped[next(iter(dropped))]
        self._outbox.drop(lambda m: m.message_id == message_id)
        self.drained()

    async def bind(self, user_id: str) -> None:
        """The device's own (signed) bind frame: `bound` goes out before the catch-up."""
        self._binding = user_id
        try:
            await self._hub.bind(self._owner.app_id, self._owner.device_id, user_id)
        finally:
            self._binding = None

    def rebound(self, user_id: str | None, upto_seq: int | None, page_size: int) -> None:
        """The binding changed (committed): drop the old user's, catch up with the new one's."""
        if user_id is not None and user_id == self._binding:
            self._owner.send(Bound(user=user_id))
        self.user_id = user_id
        self._outbox.drop(lambda m: not self.wants(m))
        self.drained()
        if self._backlog is None:
            self._backlog = Backlog(page_size, paging=False)
        self._backlog.rebound(user_id, upto_seq)
        self._read_on()

    def drained(self) -> None:
        """The outbox took pulled messages: wake the page reader if most of a page went."""
        backlog, want = self._backlog, self._want
        if (
            want is not None
            and backlog is not None
            and self._outbox.pulled <= backlog.page_size // 2
        ):
            want.set()

    def stop(self) -> None:
        self._backlog = None
        if self._want is not None:
            self._want.set()

    async def _read_pages(self) -> None:
        try:
            while (backlog := self._backlog) is not None and not self._owner.closing:
                if self._outbox.pulled > backlog.page_size // 2 and self._want is not None:
                    await self._want.wait()
                    self._want = trio.Event()
                    continue
                request = backlog.next_request()
                if request is None:
                    break
                user_at_read, page = await self._hub.page(
                    self._owner,
                    after_seq=request.after_seq,
                    limit=request.limit,
                    user_id=request.user_id,
                    upto_seq=request.upto_seq,
                )
                # The routes of commits before this read run first (Backlog.live).
                await trio.lowlevel.checkpoint()
                self.take(request, page, user_at_read)
        except Exception as exc:  # reported to the connection, never to the flusher's nursery
            self._owner.page_failed(exc)
        finally:
            self._want = None

"""Which stored messages a connection still has to read, page by page (no I/O).

A device's backlog is never loaded whole: after `welcome` the connection
reads it in pages of `page_size` messages, in creation order (`seq`), the
next page only once the outbox has sent most of the last one. So memory and
the writer thread's time per device are bounded by one page, whatever the
backlog, and a connection that goes away stops reading.

Two streams may be open:
- the *main* stream, the device's backlog at hello: every deliverable
  message with `seq` above its cursor. New messages routed while it is open
  are held (bounded) rather than queued, since a later page may bring them
  too: when the last page comes, those it did not bring are queued after it.
  If the held list is full, one more page is read instead.
- a *catch-up* stream after a bind: the user's messages the bind attached to
  the device (up to the highest, `upto`; newer ones are routed live), except
  those the main stream still brings (above its cursor, if it reads again
  after the bind). A bind that lands while a page is being read is settled
  when that page comes: the user the page was read with tells whether it was
  read before the bind or after (so it brought the bind's deliveries above
  where it started), and so what the main stream still brings.

The driver asks `first()` / `next_request()` for what to read (one read at
a time) and hands the result to `apply()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store import Message

HELD_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class PageRequest:
    after_seq: int
    limit: int
    user_id: str | None = None  # set for a catch-up page
    upto_seq: int | None = None


@dataclass(slots=True)
class _CatchUp:
    user_id: str
    cursor: int
    upto: int


class Backlog:
    __slots__ = (
        "_catch_up",
        "_cursor",
        "_held",
        "_overflow",
        "_paging",
        "_reading",
        "_rebind",
        "page_size",
    )

    def __init__(self, page_size: int, *, paging: bool = True) -> None:
        self.page_size = page_size
        self._cursor = 0  # the highest seq the main stream has read
        self._paging = paging  # the main stream is open (False: only a catch-up to come)
        self._reading = False  # a page is being read
        self._held: list[Message] = []
        self._overflow = False
        self._catch_up: _CatchUp | None = None
        self._rebind: tuple[str, int] | None = None  # a bind that landed during a main read

    @property
    def reading(self) -> bool:
        """A page is being read (one at a time)."""
        return self._reading

    @property
    def done(self) -> bool:
        return not self._paging and self._catch_up is None and not self._reading

    def first(self) -> PageRequest:
        """The main stream's first page (read with the device's hello)."""
        self._reading = True
        return PageRequest(after_seq=0, limit=self.page_size)

    def next_request(self) -> PageRequest | None:
        """The next page to read, or None when every stream is read."""
        if self._catch_up is not None:
            c = self._catch_up
            request = PageRequest(c.cursor, self.page_size, user_id=c.user_id, upto_seq=c.upto)
        elif self._paging:
            request = PageRequest(self._cursor, self.page_size)
        else:
            return None
        self._reading = True
        return request

    def apply(
        self, request: PageRequest, page: list[Message], user_at_read: str | None
    ) -> list[Message]:
        """A page was read (the device's user as it was then): the messages to queue, in order."""
        self._reading = False
        cursor_before = self._cursor
        queue = self._apply_catch_up(request, page) if request.user_id else self._apply_main(page)
        if self._rebind is not None:
            (user_id, upto), self._rebind = self._rebind, None
            if request.user_id is None and user_at_read == user_id:
                # Read after that bind: this page brought what it attached above its
                # start, and the main stream reads on after it. Below, the catch-up.
                # (A re-bind to the same user attaches next to nothing: the device
                # had a delivery of each of the user's messages already.)
                if min(upto, cursor_before) > 0:
                    self._catch_up = _CatchUp(user_id, 0, min(upto, cursor_before))
            else:
                # Read before it: now the cursor, and whether the main stream reads
                # again (after the bind), say what the catch-up must bring.
                self._open_catch_up(user_id, upto)
        return queue

    def _apply_catch_up(self, request: PageRequest, page: list[Message]) -> list[Message]:
        c = self._catch_up
        if c is not None and c.user_id == request.user_id:
            if len(page) < request.limit:
                self._catch_up = None
            elif page:
                c.cursor = page[-1].seq
        return page

    def _apply_main(self, page: list[Message]) -> list[Message]:
        last = page[-1].seq if page else None
        short = len(page) < self.page_size
        if last is not None:
            self._cursor = last
        released: list[Message] = []
        if self._held:
            # Held ones this page brought are sent with it; held ones below
            # the cursor that it did not bring (their delivery is newer than
            # the read) go right after it.
            paged = {m.message_id for m in page}
            kept = [m for m in self._held if m.message_id not in paged]
            released = [m for m in kept if m.seq <= self._cursor]
            self._held = [m for m in kept if m.seq > self._cursor]
        if short and not self._overflow:
            self._paging = False
            released += self._held
            self._held = []
        self._overflow = False
        return page + sorted(released, key=lambda m: m.seq)

    def live(self, message: Message) -> bool:
        """A message routed to the device now: True to queue it now, False if a page will.

        The driver applies a page only after the tasks woken with it have run
        (a checkpoint), so a message committed before a page was read is routed
        before that page is applied: it is held then, and matched by id.
        """
        if not self._paging or message.seq <= self._cursor:
            # At or below the cursor, no page still to come can bring it.
            return True
        if len(self._held) >= HELD_LIMIT:
            self._overflow = True  # not held: one more page is read, and brings it
        else:
            self._held.append(message)
        return False

    def rebound(self, user_id: str | None, upto_seq: int | None) -> None:
        """The device's binding changed (committed); `upto_seq`: the highest seq the bind
        attached, None if it attached nothing."""
        self._catch_up = None
        self._rebind = None
        if user_id is None or upto_seq is None:
            return
        if self._reading:
            self._rebind = (user_id, upto_seq)  # settled when the page being read comes
        else:
            self._open_catch_up(user_id, upto_seq)

    def _open_catch_up(self, user_id: str, upto_seq: int) -> None:
        # Above the cursor, a main stream still open reads after the bind: it brings those.
        upto = min(upto_seq, self._cursor) if self._paging else upto_seq
        if upto > 0:
            self._catch_up = _CatchUp(user_id, 0, upto)

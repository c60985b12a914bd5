"""Writes nobody awaits (acks, sent marks), queued for the next group commit.

Shared by both writers (writer.py for SQLite, postgres/writer.py): a kind of
write is a `Deferred`; its items are appended under one lock, and at the
start of each group commit the writer thread takes what is queued
(`DeferredKinds.take`), runs each kind's `fn(conn, items)` once, and after
the commit hands the outcome back on the Trio thread (`DeferredKinds.finish`).
The connection type `C` is the writer's (a sqlite3 connection, a PostgreSQL
`Tx`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import trio

from .records import StoreUnavailable

log = logging.getLogger("pushgate.store")

C = TypeVar("C")
I = TypeVar("I")  # noqa: E741  (an item of a Deferred)
R = TypeVar("R")

OnDone = Callable[[list[I], R | None, BaseException | None], None]
# One kind's items taken for one group commit: (kind, items, their weight, the
# number of the last one).
Taken = tuple["Deferred[Any, Any, Any]", list[Any], int, int]


class Deferred(Generic[C, I, R]):
    """Writes of one kind that nobody awaits, coalesced into one call per group commit.

    `fn(conn, items)` runs first in the next transaction with the items put
    since; `on_done(items, result, error)` then runs on the Trio thread after
    the commit (or the failure: `result` None, `error` set). Bounded in
    `weight(item)` units (message ids, for acks): at most `limit` wait at
    once, and one group commit takes at most `per_commit` of them (at least
    one item), so a flood of them never makes one commit long for everyone.
    """

    def __init__(
        self,
        owner: DeferredKinds[C],
        fn: Callable[[C, list[I]], R],
        on_done: OnDone[I, R] | None,
        *,
        weight: Callable[[I], int],
        limit: int,
        per_commit: int,
    ) -> None:
        self._owner = owner
        self.fn = fn
        self.on_done = on_done
        self.weight = weight
        self.limit = limit
        self.per_commit = per_commit
        self.items: list[I] = []  # under the owner's lock
        # The weight of `items` and of those taken but not yet committed (they
        # are still held in memory), under the owner's lock.
        self.waiting = 0
        self._room: trio.Event | None = None
        # Items numbered as they are put; `done` is the number of the last one whose
        # commit (or failure) is known on the Trio thread. Items commit in order.
        self.put_count = 0  # under the owner's lock
        self.done = 0  # Trio thread only

    def put_nowait(self, item: I) -> None:
        """Queue `item` for the next group commit; trio.WouldBlock if it does not fit now."""
        if not self._owner.put(self, item):
            raise trio.WouldBlock

    async def put(self, item: I) -> None:
        """Queue `item`, first waiting for room (backpressure on the caller)."""
        while True:
            try:
                self.put_nowait(item)
            except trio.WouldBlock:
                if self._room is None:
                    self._room = trio.Event()
                await self._room.wait()
            else:
                await trio.lowlevel.checkpoint()
                return

    def _take(self) -> tuple[list[I], int, int]:
        """Under the lock: the items of one group commit, their weight, the number of
        the last one."""
        taken = weight = 0
        for item in self.items:
            w = self.weight(item)
            if taken and weight + w > self.per_commit:
                break
            taken += 1
            weight += w
        batch, self.items = self.items[:taken], self.items[taken:]
        return batch, weight, self.put_count - len(self.items)

    def _made_room(self, weight: int) -> None:
        """On the Trio thread, once `weight` of taken items is committed (or failed)."""
        self.waiting -= weight
        if self._room is not None:
            self._room.set()
            self._room = None


class DeferredKinds(Generic[C]):
    """A writer's deferred kinds, their lock, and the wake-up of its thread.

    `wake()` (called at most once until the next `take`) must make the writer
    thread run a group commit even when no operation is queued; `closed()`
    says the writer is stopped (a put then raises StoreUnavailable).
    """

    def __init__(self, wake: Callable[[], None], closed: Callable[[], bool]) -> None:
        self._wake = wake
        self._closed = closed
        self.kinds: list[Deferred[C, Any, Any]] = []
        self.lock = threading.Lock()
        self._signalled = False

    def new(
        self,
        fn: Callable[[C, list[I]], R],
        on_done: OnDone[I, R] | None,
        *,
        weight: Callable[[I], int],
        limit: int,
        per_commit: int,
    ) -> Deferred[C, I, R]:
        kind: Deferred[C, I, R] = Deferred(
            self, fn, on_done, weight=weight, limit=limit, per_commit=per_commit
        )
        self.kinds.append(kind)
        return kind

    def waiting(self) -> int:
        with self.lock:
            return sum(kind.waiting for kind in self.kinds)

    def put(self, kind: Deferred[C, Any, Any], item: Any) -> bool:
        if self._closed():
            raise StoreUnavailable("the store is closed")
        weight = kind.weight(item)
        with self.lock:
            # One item heavier than the whole limit still goes, alone.
            if kind.items and kind.waiting + weight > kind.limit:
                return False
            kind.items.append(item)
            kind.waiting += weight
            kind.put_count += 1
            signal = not self._signalled
            self._signalled = True
        if signal:
            self._wake()
        return True

    def take(self) -> list[Taken]:
        """On the writer thread: what each kind has for one group commit (maybe nothing)."""
        with self.lock:
            self._signalled = False
            taken: list[Taken] = [(kind, *kind._take()) for kind in self.kinds if kind.items]
            if any(kind.items for kind in self.kinds):
                # Past a kind's per-commit bound: the rest goes in the next commit.
                self._signalled = True
                self._wake()
        return taken

    def finish(
        self, taken: list[Taken], results: list[tuple[Any, BaseException | None]] | None, error: Any
    ) -> None:
        """On the Trio thread after the commit (`results` per kind) or its failure
        (`results` None, `error` set): tell each kind, and make room."""
        for k, (kind, items, weight, last) in enumerate(taken):
            result, kind_error = (None, error) if results is None else results[k]
            if kind.on_done is not None:
                try:
                    kind.on_done(items, result, kind_error)
                except Exception:
                    log.exception("event=deferred_callback_failed")
            with self.lock:
                kind._made_room(weight)
            kind.done = last

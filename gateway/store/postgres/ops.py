"""The units the PostgreSQL writer thread runs: operations awaited by a caller,
kinds written together over arrays, deferred writes nobody awaits, and the
savepoint each runs in (see writer.py for the design)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import psycopg
import trio

from ..records import StoreUnavailable
from .connect import broken, wrap
from .tx import Tx

if TYPE_CHECKING:
    from .writer import Writer

log = logging.getLogger("pushgate.store.postgres")

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (an item of a batched kind or a Deferred)
R = TypeVar("R")


class BatchKind(Generic[I, R]):
    """Operations written together: `fn(tx, items)` gives one result or exception per item."""

    def __init__(self, name: str, fn: Callable[[Tx, list[I]], Sequence[R | BaseException]]) -> None:
        self.name = name
        self.fn = fn


@dataclass(slots=True, eq=False)
class Op:
    fn: Callable[[Tx], Any] | None = None
    kind: BatchKind[Any, Any] | None = None
    item: Any = None
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None
    # Instead of `done`: called on the Trio thread once the outcome is known.
    after: Callable[[Any, BaseException | None], None] | None = None


class ConnectionLost(Exception):
    """The connection broke inside the transaction: nothing of it will commit."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Deferred(Generic[I, R]):
    """Writes of one kind nobody awaits, coalesced into one call per group commit.

    As the SQLite writer's Deferred: `fn(tx, items)` runs first in the next
    transaction; `on_done(items, result, error)` runs on the Trio thread after
    the commit (or failure). At most `limit` (in `weight` units) wait at once;
    one commit takes at most `per_commit` of them.
    """

    def __init__(
        self,
        writer: Writer,
        fn: Callable[[Tx, list[I]], R],
        on_done: Callable[[list[I], R | None, BaseException | None], None] | None,
        *,
        weight: Callable[[I], int],
        limit: int,
        per_commit: int,
    ) -> None:
        self._writer = writer
        self.fn = fn
        self.on_done = on_done
        self.weight = weight
        self.limit = limit
        self.per_commit = per_commit
        self.items: list[I] = []  # under the writer's deferred lock
        self.waiting = 0  # weight queued or taken and not yet committed, under that lock
        self._room: trio.Event | None = None
        # Items numbered as they are put; `done` is the number of the last one whose
        # commit (or failure) is known on the Trio thread. Items commit in order.
        self.put_count = 0  # under the writer's deferred lock
        self.done = 0  # Trio thread only

    def put_nowait(self, item: I) -> None:
        if not self._writer._put_deferred(self, item):
            raise trio.WouldBlock

    async def put(self, item: I) -> None:
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

    def _made_room(self, weight: int, lock: threading.Lock) -> None:
        with lock:
            self.waiting -= weight
        if self._room is not None:
            self._room.set()
            self._room = None


def settle(op: Op, outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        op.result, op.error = None, outcome
    else:
        op.result, op.error = outcome, None


def in_savepoint(tx: Tx, fn: Callable[[], T]) -> tuple[bool, Any]:
    """(True, result) or (False, the error), with the work undone on error; raises
    ConnectionLost if the transaction itself is gone."""
    conn = tx.conn
    try:
        conn.execute("SAVEPOINT op")
    except psycopg.Error as exc:
        raise ConnectionLost(exc) from None
    try:
        result = fn()
    except BaseException as exc:  # handed back to the caller, never lost here
        if broken(conn):
            raise ConnectionLost(exc) from None
        try:
            conn.execute("ROLLBACK TO SAVEPOINT op")
        except psycopg.Error as rollback_error:
            raise ConnectionLost(rollback_error) from None
        return False, wrap(exc)
    try:
        conn.execute("RELEASE SAVEPOINT op")
    except psycopg.Error as exc:
        raise ConnectionLost(exc) from None
    return True, result


def run_deferred(
    tx: Tx, kind: Deferred[Any, Any], items: list[Any]
) -> tuple[Any, BaseException | None]:
    """One kind's deferred items in their own savepoint: a failure loses only them."""
    ok, value = in_savepoint(tx, partial(kind.fn, tx, items))
    if ok:
        return value, None
    if isinstance(value, StoreUnavailable):
        log.error("event=deferred_write_failed items=%d error=%r", len(items), str(value))
    else:
        log.error("event=deferred_write_failed items=%d error=%r", len(items), repr(value))
    return None, value

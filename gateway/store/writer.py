"""The one thread that owns the SQLite connection, committing operations in groups.

Trio tasks submit a function of the connection and await its result. The
thread takes everything queued (up to `max_batch`), runs each operation in a
savepoint (one failing operation does not undo the others), commits once, and
only then hands the results back. So a caller that got a result knows its
write is on disk, and a thousand concurrent callers share one fsync.

Writes nobody waits for (acks, sent marks) go through a `Deferred` instead:
items are appended to a list, and one call `fn(conn, items)` at the start of
the next group commit handles all of them with no per-item savepoint, event
or task switch. Items deferred before an operation is submitted are written
before it, in the same transaction or an earlier one.

The console's day counters that the operations of a group commit note
(stats.DayCounts) are written once, just before its COMMIT.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import trio

from . import stats
from .deferred_queue import Deferred, DeferredKinds
from .records import StoreStatistics, StoreUnavailable
from .stats import CountingConnection, DayCounts

log = logging.getLogger("pushgate.store")

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (an item of a Deferred)
R = TypeVar("R")


@dataclass(slots=True, eq=False)
class _Op(Generic[T]):
    fn: Callable[[sqlite3.Connection], T]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None
    # Instead of `done`: called on the Trio thread once the outcome is known.
    after: Callable[[Any, BaseException | None], None] | None = None


_STOP = object()
_WAKE = object()  # something was deferred: run a group commit even with no op queued
CommitObserver = Callable[[int, float], None]  # (batch size, seconds), on the writer thread


class Writer:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = 1000,
        max_in_flight: int = 20_000,
    ) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Bounds the queue: a caller waits for a slot before enqueueing.
        self._slots = trio.Semaphore(max_in_flight)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._batches = 0
        self._ops = 0
        # Transactions begun, on the writer thread: tells a deferred write
        # whether another one ran in the same transaction.
        self.transaction = 0
        self._in_flight = 0  # Trio thread only
        self.on_commit: CommitObserver | None = None  # metrics hook; must not raise
        self._counts = DayCounts()  # the console's counters noted in the open transaction
        self._deferred: DeferredKinds[sqlite3.Connection] = DeferredKinds(
            wake=lambda: self._queue.put(_WAKE), closed=lambda: self._thread is None
        )

    def deferred(
        self,
        fn: Callable[[sqlite3.Connection, list[I]], R],
        on_done: Callable[[list[I], R | None, BaseException | None], None] | None = None,
        *,
        weight: Callable[[I], int] = lambda item: 1,
        limit: int = 100_000,
        per_commit: int = 100_000,
    ) -> Deferred[sqlite3.Connection, I, R]:
        """A new kind of coalesced, unawaited write (see deferred_queue.py)."""
        return self._deferred.new(fn, on_done, weight=weight, limit=limit, per_commit=per_commit)

    def statistics(self) -> StoreStatistics:
        waiting = self._deferred.waiting()
        return StoreStatistics(self._batches, self._ops, self._in_flight, waiting)

    def _take_deferred(self) -> _Op[Any] | None:
        """On the thread: one op running the deferred items of one group commit, or None."""
        taken = self._deferred.take()
        if not taken:
            return None

        def run(conn: sqlite3.Connection) -> list[tuple[Any, BaseException | None]]:
            return [_run_kind(conn, kind, items) for kind, items, _, _ in taken]

        return _Op(run, after=partial(self._deferred.finish, taken))

    def start(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(target=self._run, name="pushgate-store", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    async def stop(self) -> None:
        """Finish everything queued, commit, close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        thread = self._thread
        await trio.to_thread.run_sync(thread.join)
        self._thread = None

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` inside the next group commit; return after the commit."""
        if self._thread is None:
            raise StoreUnavailable("the store is closed")
        op: _Op[T] = _Op(fn)
        await take_slot(self._slots)
        try:
            self._in_flight += 1
            self._queue.put(op)
            # Shielded: once queued the operation will commit; a cancelled
            # caller must not release its slot before the thread is done.
            try:
                with trio.CancelScope(shield=True):
                    await op.done.wait()
            finally:
                self._in_flight -= 1
        finally:
            self._slots.release()
        if op.error is not None:
            raise op.error
        result: T = op.result
        return result

    # --- the thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        if isinstance(conn, CountingConnection):
            conn.day_counts = self._counts
        self._started.set()
        try:
            while True:
                first = self._queue.get()
                stop = first is _STOP
                batch: list[_Op[Any]] = [] if stop or first is _WAKE else [first]
                while not stop and len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                    elif item is not _WAKE:
                        batch.append(item)
                deferred = self._take_deferred()
                if deferred is not None:
                    batch.insert(0, deferred)
                if batch:
                    self._run_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op[Any]]) -> None:
        started = time.perf_counter()
        counts = self._counts
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, exc)
            return
        self.transaction += 1
        segment: list[_Op[Any]] = []  # the ops whose work the open transaction holds
        for op in batch:
            segment.append(op)
            try:
                conn.execute("SAVEPOINT op")
            except sqlite3.Error as exc:
                op.error = _wrap(exc)
                continue
            mark = counts.mark()
            try:
                op.result = op.fn(conn)
            except BaseException as exc:  # handed back to the caller, never lost here
                op.error = _wrap(exc) if isinstance(exc, sqlite3.Error) else exc
                counts.undo(mark)
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK TO op")
                    except sqlite3.Error:
                        log.exception("event=rollback_to_savepoint_failed")
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back by itself (SQLITE_FULL,
                # an I/O error): every op in it lost its work, so none may report
                # success; the rest of the batch goes on in a new transaction.
                self._lost(segment, op.error)
                segment = []
                counts.undo(0)
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    self._fail_all(batch, exc)
                    return
                self.transaction += 1
                continue
            try:
                conn.execute("RELEASE op")
            except sqlite3.Error as exc:
                op.error = _wrap(exc)
        try:
            counts.write(conn)  # in the transaction of the work they count
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            counts.undo(0)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._fail_all(batch, exc)
            return
        elapsed = time.perf_counter() - started
        self._batches += 1  # read from the Trio thread: a torn read is only a stale number
        self._ops += len(batch)
        self._resolve(batch)
        if self.on_commit is not None:
            self.on_commit(len(batch), elapsed)

    @staticmethod
    def _lost(ops: list[_Op[Any]], cause: BaseException | None) -> None:
        error = (
            cause
            if isinstance(cause, StoreUnavailable)
            else StoreUnavailable("the store rolled the transaction back")
        )
        log.error("event=transaction_rolled_back error=%r ops=%d", str(error), len(ops))
        for op in ops:
            op.result = None
            op.error = error

    def _fail_all(self, batch: list[_Op[Any]], exc: sqlite3.Error) -> None:
        log.error("event=commit_failed error=%r ops=%d", str(exc), len(batch))
        error = _wrap(exc)
        for op in batch:
            op.error = error
        self._resolve(batch)

    def _resolve(self, batch: list[_Op[Any]]) -> None:
        assert self._token is not None

        def wake() -> None:
            for op in batch:
                if op.after is not None:
                    op.after(op.result, op.error)
                else:
                    op.done.set()

        try:
            self._token.run_sync_soon(wake)
        except trio.RunFinishedError:
            pass


async def take_slot(slots: trio.Semaphore) -> None:
    """`slots.acquire()` without its task switch when a slot is free: the caller
    waits for its commit right after, so one switch per call is enough. A
    cancelled caller still stops here, before anything is queued."""
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        slots.acquire_nowait()
    except trio.WouldBlock:
        await slots.acquire()


def _run_kind(
    conn: sqlite3.Connection, kind: Deferred[sqlite3.Connection, Any, Any], items: list[Any]
) -> tuple[Any, BaseException | None]:
    """One kind's deferred items, in their own savepoint: a bug there loses only them."""
    conn.execute("SAVEPOINT deferred")
    counts = stats.noted_counts(conn)
    mark = 0 if counts is None else counts.mark()
    try:
        result = kind.fn(conn, items)
    except Exception as exc:
        if counts is not None:
            counts.undo(mark)
        if not conn.in_transaction:
            raise  # the transaction is gone: the batch reports it for every op
        conn.execute("ROLLBACK TO deferred")
        conn.execute("RELEASE deferred")
        error = _wrap(exc) if isinstance(exc, sqlite3.Error) else exc
        if isinstance(error, StoreUnavailable):  # a full disk: no bug to trace
            log.error("event=deferred_write_failed items=%d error=%r", len(items), str(error))
        else:
            log.exception("event=deferred_write_failed items=%d", len(items))
        return None, error
    conn.execute("RELEASE deferred")
    return result, None


def _wrap(exc: sqlite3.Error) -> BaseException:
    """Storage failures (full disk, I/O) become StoreUnavailable; bugs stay bugs."""
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.ProgrammingError
    ):
        return StoreUnavailable(str(exc))
    return exc

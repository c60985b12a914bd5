"""The one thread that owns the store's write connection, committing in groups.

The same design as the SQLite writer (gateway/store/writer.py): Trio tasks
submit operations and await their result; the thread takes everything queued
(up to `max_batch`), runs it in one transaction, commits once, and only then
hands the results back, so a caller that got a result knows its write is
committed. Each operation runs in a savepoint: one that fails is undone
alone and the others still commit.

What is added for PostgreSQL, where every statement is a round trip:

- Batched kinds. Operations of one kind (pushes, hellos, disconnects) are
  handed to one call `fn(tx, items)` that writes all of them with a few
  statements over arrays, in one savepoint; it returns one result (or
  exception) per item. If that call fails as a whole, each item is run alone
  in its own savepoint, so a bad item fails alone. Ops of one batch are
  concurrent (no caller waited for another), so running a kind's ops
  together is a valid order for them.
- Deferred writes (acks, sent marks) as in the SQLite writer: nobody awaits
  them; all items taken for one group commit go to one call, first.
- A lost connection (the server restarted, the backend was terminated) fails
  the batch in flight with StoreUnavailable (its COMMIT may or may not have
  happened: the caller was never told it did), and the next batch connects
  again, with a growing delay while connecting fails (connect.Reconnect).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import psycopg
import trio

from ..deferred_queue import Deferred, DeferredKinds
from ..records import StoreStatistics, StoreUnavailable
from ..writer import take_slot
from .connect import Reconnect, broken, unavailable
from .ops import BatchKind, ConnectionLost, Op, in_savepoint, run_deferred, settle
from .tx import Connection, Tx

log = logging.getLogger("pushgate.store.postgres")

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  (an item of a batched kind or a Deferred)
R = TypeVar("R")


_STOP = object()
_WAKE = object()  # something was deferred: run a group commit even with no op queued
CommitObserver = Callable[[int, float], None]  # (batch size, seconds), on the writer thread


class Writer:
    def __init__(
        self,
        connect: Callable[[], Connection],
        reconnect: Reconnect,
        *,
        max_batch: int = 1000,
        max_in_flight: int = 20_000,
    ) -> None:
        self._connect = connect
        self._reconnect = reconnect
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = trio.Semaphore(max_in_flight)
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._conn: Connection | None = None  # the thread's only
        self._batches = 0
        self._ops = 0
        self._in_flight = 0  # Trio thread only
        self.on_commit: CommitObserver | None = None
        self._deferred: DeferredKinds[Tx] = DeferredKinds(
            wake=lambda: self._queue.put(_WAKE), closed=lambda: self._thread is None
        )
        self._progress = trio.Event()  # set (and replaced) when deferred items are done

    def deferred(
        self,
        fn: Callable[[Tx, list[I]], R],
        on_done: Callable[[list[I], R | None, BaseException | None], None] | None = None,
        *,
        weight: Callable[[I], int] = lambda item: 1,
        limit: int = 100_000,
        per_commit: int = 100_000,
    ) -> Deferred[Tx, I, R]:
        return self._deferred.new(fn, on_done, weight=weight, limit=limit, per_commit=per_commit)

    def statistics(self) -> StoreStatistics:
        waiting = self._deferred.waiting()
        return StoreStatistics(self._batches, self._ops, self._in_flight, waiting)

    # --- the Trio side --------------------------------------------------------

    async def start(self, first: Callable[[Connection], None]) -> None:
        """Connect, run `first(conn)` (migrations) on the thread, then serve; raises
        what connecting or `first` raised. Trio runs on while it connects."""
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.Thread(
            target=self._run, args=(first,), name="pushgate-pg-writer", daemon=True
        )
        self._thread.start()
        await trio.to_thread.run_sync(self._started.wait)
        if self._start_error is not None:
            self._thread.join()
            self._thread = None
            raise self._start_error

    async def stop(self) -> None:
        """Finish everything queued, commit, close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        thread = self._thread
        await trio.to_thread.run_sync(thread.join)
        self._thread = None
        self._progress.set()  # readers waiting on deferred writes see the store closed

    async def call(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn(tx)` inside the next group commit; return after the commit."""
        result: T = await self._submit(Op(fn=fn))
        return result

    async def call_batched(self, kind: BatchKind[I, R], item: I) -> R:
        """`item` written with the other items of `kind` of the next group commit."""
        result: R = await self._submit(Op(kind=kind, item=item))
        return result

    async def _submit(self, op: Op) -> Any:
        if self._thread is None:
            raise StoreUnavailable("the store is closed")
        await take_slot(self._slots)
        try:
            self._in_flight += 1
            self._queue.put(op)
            # Shielded: once queued the operation will commit or fail; a cancelled
            # caller must not release its slot before the thread is done with it.
            try:
                with trio.CancelScope(shield=True):
                    await op.done.wait()
            finally:
                self._in_flight -= 1
        finally:
            self._slots.release()
        if op.error is not None:
            raise op.error
        return op.result

    async def deferred_written(self) -> None:
        """Wait until every deferred item put before this call is committed (or failed):
        a read after it sees the acks and sent marks queued before it, as a read
        queued behind them on the SQLite writer does."""
        with self._deferred.lock:
            targets = [(kind, kind.put_count) for kind in self._deferred.kinds]
        for kind, target in targets:
            while kind.done < target:
                if self._thread is None:
                    return
                await self._progress.wait()

    # --- the thread ------------------------------------------------------------

    def _run(self, first: Callable[[Connection], None]) -> None:
        try:
            conn = self._connect()
            try:
                first(conn)
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        self._conn = conn
        self._started.set()
        try:
            while True:
                first_item = self._queue.get()
                stop = first_item is _STOP
                batch: list[Op] = [] if stop or first_item is _WAKE else [first_item]
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
                    self._run_batch(batch)
                if stop:
                    return
        finally:
            if self._conn is not None:
                self._conn.close()

    def _take_deferred(self) -> Op | None:
        taken = self._deferred.take()
        if not taken:
            return None

        def run(tx: Tx) -> list[tuple[Any, BaseException | None]]:
            return [run_deferred(tx, kind, items) for kind, items, _, _ in taken]

        def after(results: list[tuple[Any, BaseException | None]] | None, error: Any) -> None:
            self._deferred.finish(taken, results, error)
            self._progress.set()
            self._progress = trio.Event()

        return Op(fn=run, after=after)

    def _connection(self) -> Connection:
        if self._conn is not None and not broken(self._conn):
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._reconnect.check()
        try:
            self._conn = self._connect()
        except StoreUnavailable as exc:
            raise self._reconnect.failed(exc) from None
        self._reconnect.succeeded()
        return self._conn

    def _run_batch(self, batch: list[Op]) -> None:
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                conn = self._connection()
            except StoreUnavailable as exc:
                self._fail_all(batch, exc)
                return
            try:
                self._execute(Tx(conn), batch)
            except ConnectionLost as lost:
                # Nothing of it committed: once, on a new connection, it all runs
                # again (a backend terminated, or dropped while idle, costs no caller).
                log.warning("event=store_connection_lost attempt=%d error=%r", attempt, str(lost))
                self._drop()
                if attempt == 1:
                    continue
                self._fail_all(batch, unavailable(lost.cause))
                return
            break
        try:
            conn.commit()
        except psycopg.Error as exc:
            # The COMMIT may or may not have happened: no caller is told it did.
            self._drop()
            self._fail_all(batch, unavailable(exc))
            return
        self._batches += 1  # read from the Trio thread: a torn read is only a stale number
        self._ops += len(batch)
        self._resolve(batch)
        if self.on_commit is not None:
            self.on_commit(len(batch), time.perf_counter() - started)

    def _execute(self, tx: Tx, batch: list[Op]) -> None:
        """Every op of the batch in the open transaction, each in a savepoint."""
        kinds: dict[BatchKind[Any, Any], list[Op]] = {}
        plain: list[Op] = []
        for op in batch:
            if op.kind is not None:
                kinds.setdefault(op.kind, []).append(op)
            else:
                plain.append(op)
        for op in plain:
            assert op.fn is not None
            ok, value = in_savepoint(tx, partial(op.fn, tx))
            op.result, op.error = (value, None) if ok else (None, value)
        for kind, ops in kinds.items():
            ok, value = in_savepoint(tx, partial(kind.fn, tx, [op.item for op in ops]))
            if ok:
                for op, outcome in zip(ops, value, strict=True):
                    settle(op, outcome)
                continue
            # The kind failed as a whole: each op alone, so a bad one fails alone.
            for op in ops:
                ok, value = in_savepoint(tx, partial(kind.fn, tx, [op.item]))
                settle(op, value[0] if ok else value)

    def _drop(self) -> None:
        """Close the connection after a failure (the next batch connects anew)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _fail_all(self, batch: list[Op], error: BaseException) -> None:
        log.error("event=commit_failed error=%r ops=%d", str(error), len(batch))
        for op in batch:
            op.result = None
            op.error = error
        self._resolve(batch)

    def _resolve(self, batch: list[Op]) -> None:
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

"""The units the PostgreSQL writer thread runs: operations awaited by a caller,
kinds written together over arrays, deferred writes nobody awaits, and the
savepoint each runs in (see writer.py for the design; the deferred queue
itself is ../deferred_queue.py, shared with the SQLite writer)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

import psycopg
import trio

from ..deferred_queue import Deferred
from ..records import StoreUnavailable
from .connect import broken, wrap
from .tx import Tx

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
    tx: Tx, kind: Deferred[Tx, Any, Any], items: list[Any]
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

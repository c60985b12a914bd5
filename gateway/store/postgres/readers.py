"""A small pool of read connections, each used by one thread at a time.

Reads (the API's lists and details, backlog pages) do not queue behind the
group commit: each runs on a connection of its own in autocommit mode, in a
worker thread (psycopg's sync API; its async one does not run under Trio).
At most `size` reads run at once; more wait for a connection. A connection
that breaks is dropped and the read fails with StoreUnavailable; the next
read connects anew (with the writer's backoff while connecting fails).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
import trio

from ..records import StoreUnavailable
from .connect import Reconnect, broken, is_unavailable, log, unavailable
from .tx import Connection

T = TypeVar("T")


class ReadPool:
    def __init__(self, connect: Callable[[], Connection], reconnect: Reconnect, size: int) -> None:
        self._connect = connect
        self._reconnect = reconnect
        self._slots = trio.Semaphore(size)
        self._idle: list[Connection] = []
        self._closed = False

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` on a read connection, in a worker thread."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            # Not abandoned on cancel: the thread owns the connection until it
            # returns, which the connect and statement timeouts bound.
            conn, result, error = await trio.to_thread.run_sync(self._call, conn, fn)
            if conn is not None:
                if self._closed:
                    conn.close()
                else:
                    self._idle.append(conn)
        if error is not None:
            raise error
        return result  # type: ignore[return-value]

    def _call(
        self, conn: Connection | None, fn: Callable[[Connection], T]
    ) -> tuple[Connection | None, T | None, BaseException | None]:
        """On the worker thread: (the connection to keep, the result, the error). A read
        whose connection broke (terminated, dropped while idle) runs once more on a new one."""
        for attempt in (1, 2):
            if conn is None or broken(conn):
                if conn is not None:
                    conn.close()
                try:
                    conn = self._open()
                except StoreUnavailable as exc:
                    return None, None, exc
            try:
                return conn, fn(conn), None
            except psycopg.Error as exc:
                # An autocommit connection is usable again after a failed statement.
                idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                if broken(conn) or not idle:
                    conn.close()
                    conn = None
                    if attempt == 1 and is_unavailable(exc):
                        log.warning("event=store_connection_lost role=reader error=%r", str(exc))
                        continue
                return conn, None, unavailable(exc) if is_unavailable(exc) else exc
            except Exception as exc:
                return conn, None, exc
        raise AssertionError("unreachable")

    def _open(self) -> Connection:
        self._reconnect.check()
        try:
            conn = self._connect()
        except StoreUnavailable as exc:
            raise self._reconnect.failed(exc) from None
        self._reconnect.succeeded()
        return conn

    def close(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()

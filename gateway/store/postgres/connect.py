"""Opening connections to PostgreSQL, and what a failure of one means to a caller.

Every connection of the store is made here, with the same settings: a short
connect timeout, an `application_name` naming the store's role, and a
statement timeout, so no query the store runs can hold a thread (or a
caller) longer than that. A failure to connect, or a connection lost under a
query, becomes `StoreUnavailable` (pushes answer 503 with Retry-After); the
message never carries the password of the URL.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..records import StoreUnavailable

log = logging.getLogger("pushgate.store.postgres")

CONNECT_TIMEOUT_S = 5
# The longest any statement of the store may run; a group commit is milliseconds.
STATEMENT_TIMEOUT_MS = 10_000
# A writer transaction is never left idle: this only ends one left by a bug.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 30_000


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def describe(conninfo: str) -> str:
    """`user@host:port/dbname` of a connection URL: what logs and errors may show."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "an unparsable PostgreSQL URL"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    user = parts.get("user") or "?"
    return f"{user}@{host}:{port}/{parts.get('dbname') or user}"


def check_url(conninfo: str) -> None:
    """ValueError naming the problem if `conninfo` is not a usable PostgreSQL URL."""
    try:
        conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"not a valid PostgreSQL URL: {str(exc).splitlines()[0]}") from None


def connect(conninfo: str, *, role: str, autocommit: bool) -> psycopg.Connection[tuple[Any, ...]]:
    """A new connection, or StoreUnavailable saying why there is none."""
    try:
        conn = psycopg.connect(
            conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=f"pushgate-{role}",
        )
    except psycopg.Error as exc:
        where = describe(conninfo)
        raise StoreUnavailable(
            f"cannot connect to PostgreSQL at {where}: {_first_line(exc)}"
        ) from None
    try:
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}")
        conn.autocommit = autocommit
    except psycopg.Error as exc:
        conn.close()
        raise unavailable(exc) from None
    return conn


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_unavailable(exc: BaseException) -> bool:
    """A failure of the database or the link to it, not of the statement: the
    connection broke, the server shut down or cancelled, a deadlock, a full disk."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"PostgreSQL: {_first_line(exc)}")


def wrap(exc: BaseException) -> BaseException:
    """Database failures become StoreUnavailable; anything else (a bug, a constraint) stays."""
    return unavailable(exc) if is_unavailable(exc) else exc


def broken(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """The connection cannot be used again (lost, closed, or in an unknown state)."""
    return conn.closed or conn.broken


@dataclass
class Reconnect:
    """When the store may try to connect again: at once after a connection was lost,
    then with a doubling delay while attempts fail, so an unreachable server is
    not hammered by every caller. Shared by the writer and the readers."""

    first_delay: float = 0.1
    max_delay: float = 5.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._not_before = 0.0
        self._delay = 0.0

    def check(self) -> None:
        """StoreUnavailable if the last attempt failed too recently to try again."""
        with self._lock:
            wait = self._not_before - time.monotonic()
        if wait > 0:
            raise StoreUnavailable(f"PostgreSQL is unreachable (next attempt in {wait:.1f} s)")

    def failed(self, error: StoreUnavailable) -> StoreUnavailable:
        """Note a failed attempt (logged with its cause); the error to hand callers,
        which does not say where the server is."""
        with self._lock:
            self._delay = min(self.max_delay, max(self.first_delay, self._delay * 2))
            self._not_before = time.monotonic() + self._delay
        log.warning("event=store_connect_failed retry_in=%.1f error=%r", self._delay, str(error))
        return StoreUnavailable("PostgreSQL is unreachable")

    def succeeded(self) -> None:
        with self._lock:
            recovered = self._delay > 0
            self._delay = 0.0
            self._not_before = 0.0
        if recovered:
            log.info("event=store_reconnected")

    @property
    def failing(self) -> bool:
        with self._lock:
            return self._delay > 0

"""Counters behind the console's live numbers (`GET /v1/stats`).

An app's pushes and acks are counted per UTC day of the message's creation as
they happen (in the same transaction as the insert or the ack), so reading
today's numbers is one row, however many messages today holds: `GET
/v1/stats` never scans messages on the writer thread. Plain functions of a
sqlite3 connection, run on the writer thread like queries.py.

On a connection whose group commits write them (a `CountingConnection` with
`day_counts` set, as the writer thread sets it) a count is not written at
once: it is noted in `DayCounts`, and the writer adds up everything noted in
a group commit into one upsert per (app, day) just before its COMMIT (a
thousand concurrent pushes of one app cost one upsert, not a thousand). An
operation rolled back to its savepoint takes its notes back with it; a read
of the counts adds what is noted and not yet written.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DAY_MS = 86_400_000

_ADD = (
    "INSERT INTO daily_counts (app_id, day, pushes, ackable, acked) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (app_id, day) DO UPDATE SET pushes = pushes + excluded.pushes,"
    " ackable = ackable + excluded.ackable, acked = acked + excluded.acked"
)


class DayCounts:
    """Counts noted in the open transaction, written at its end (see the module doc)."""

    __slots__ = ("_noted",)

    def __init__(self) -> None:
        self._noted: list[tuple[str, int, int, int, int]] = []  # (app, day, pushes, ackable, acked)

    def note(self, app_id: str, day: int, pushes: int, ackable: int, acked: int) -> None:
        self._noted.append((app_id, day, pushes, ackable, acked))

    def mark(self) -> int:
        """Where the notes stand: `undo(mark)` takes back everything noted after it."""
        return len(self._noted)

    def undo(self, mark: int) -> None:
        del self._noted[mark:]

    def sums(self) -> dict[tuple[str, int], list[int]]:
        total: dict[tuple[str, int], list[int]] = {}
        for app_id, day, pushes, ackable, acked in self._noted:
            row = total.get((app_id, day))
            if row is None:
                total[app_id, day] = [pushes, ackable, acked]
            else:
                row[0] += pushes
                row[1] += ackable
                row[2] += acked
        return total

    def write(self, conn: sqlite3.Connection) -> None:
        """Everything noted, one upsert per (app, day), in the open transaction."""
        if self._noted:
            rows = [(app, day, *n) for (app, day), n in sorted(self.sums().items())]
            conn.executemany(_ADD, rows)
            self._noted.clear()


class CountingConnection(sqlite3.Connection):
    """A store connection; with `day_counts` set, counts are noted there and whoever
    set it writes them before each COMMIT (DayCounts.write)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.day_counts: DayCounts | None = None


def noted_counts(conn: sqlite3.Connection) -> DayCounts | None:
    """The counts noted on `conn` and not yet written, if it notes them."""
    return conn.day_counts if isinstance(conn, CountingConnection) else None


def _add(conn: sqlite3.Connection, app_id: str, day: int, counts: tuple[int, int, int]) -> None:
    noted = noted_counts(conn)
    if noted is not None:
        noted.note(app_id, day, *counts)
    else:
        conn.execute(_ADD, (app_id, day, *counts))


@dataclass(frozen=True, slots=True)
class PushStats:
    """An app's pushes created since a moment.

    `pushes` counts every message row (one per target, broadcasts included);
    `ackable` leaves broadcasts out, since a broadcast has no single status;
    `acked` is how many of the ackable ones are Acked (status 2).
    """

    pushes: int
    ackable: int
    acked: int

    @property
    def acked_share(self) -> float | None:
        """acked / ackable, or None when nothing ackable was pushed."""
        return self.acked / self.ackable if self.ackable else None


def count_pushes(conn: sqlite3.Connection, app_id: str, now: int, push_types: list[str]) -> None:
    """Messages stored now (one per target)."""
    ackable = sum(1 for t in push_types if t != "broadcast")
    _add(conn, app_id, now // DAY_MS, (len(push_types), ackable, 0))


def count_acked(conn: sqlite3.Connection, app_id: str, changed: Iterable[tuple[int, str]]) -> None:
    """Messages that became Acked just now, as (created_at, push_type) pairs."""
    days = Counter(created // DAY_MS for created, push_type in changed if push_type != "broadcast")
    for day, n in days.items():
        _add(conn, app_id, day, (0, 0, n))


def push_stats(conn: sqlite3.Connection, app_id: str, since_ms: int) -> PushStats:
    """The app's messages created since `since_ms`, which must start a UTC day."""
    if since_ms % DAY_MS:
        raise ValueError("push_stats counts whole UTC days: since_ms must be a multiple of a day")
    since_day = since_ms // DAY_MS
    row = conn.execute(
        "SELECT coalesce(sum(pushes), 0), coalesce(sum(ackable), 0), coalesce(sum(acked), 0)"
        " FROM daily_counts WHERE app_id = ? AND day >= ?",
        (app_id, since_day),
    ).fetchone()
    pushes, ackable, acked = int(row[0]), int(row[1]), int(row[2])
    noted = noted_counts(conn)
    if noted is not None:  # noted earlier in this transaction, not yet written
        for (app, day), n in noted.sums().items():
            if app == app_id and day >= since_day:
                pushes, ackable, acked = pushes + n[0], ackable + n[1], acked + n[2]
    return PushStats(pushes=pushes, ackable=ackable, acked=acked)

"""Counters behind the console's live numbers (`GET /v1/stats`).

An app's pushes and acks are counted per UTC day of the message's creation as
they happen (in the same transaction as the insert or the ack), so reading
today's numbers is one row, however many messages today holds: `GET
/v1/stats` never scans messages on the writer thread. Plain functions of a
sqlite3 connection, run on the writer thread like queries.py.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

DAY_MS = 86_400_000

_ADD = (
    "INSERT INTO daily_counts (app_id, day, pushes, ackable, acked) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (app_id, day) DO UPDATE SET pushes = pushes + excluded.pushes,"
    " ackable = ackable + excluded.ackable, acked = acked + excluded.acked"
)


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
    conn.execute(_ADD, (app_id, now // DAY_MS, len(push_types), ackable, 0))


def count_acked(conn: sqlite3.Connection, app_id: str, changed: Iterable[tuple[int, str]]) -> None:
    """Messages that became Acked just now, as (created_at, push_type) pairs."""
    days = Counter(created // DAY_MS for created, push_type in changed if push_type != "broadcast")
    conn.executemany(_ADD, [(app_id, day, 0, 0, n) for day, n in days.items()])


def push_stats(conn: sqlite3.Connection, app_id: str, since_ms: int) -> PushStats:
    """The app's messages created since `since_ms`, which must start a UTC day."""
    if since_ms % DAY_MS:
        raise ValueError("push_stats counts whole UTC days: since_ms must be a multiple of a day")
    row = conn.execute(
        "SELECT coalesce(sum(pushes), 0), coalesce(sum(ackable), 0), coalesce(sum(acked), 0)"
        " FROM daily_counts WHERE app_id = ? AND day >= ?",
        (app_id, since_ms // DAY_MS),
    ).fetchone()
    return PushStats(pushes=int(row[0]), ackable=int(row[1]), acked=int(row[2]))

"""Counts for the console's live numbers (`GET /v1/stats`), as plain functions of a connection.

Like queries.py, they run on the writer thread inside its transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from protocol.status_codes import Status

ACKED = int(Status.ACKED)


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


def push_stats(conn: sqlite3.Connection, app_id: str, since_ms: int) -> PushStats:
    row = conn.execute(
        "SELECT count(*),"
        " coalesce(sum(push_type != 'broadcast'), 0),"
        " coalesce(sum(push_type != 'broadcast' AND status = ?), 0)"
        " FROM messages WHERE app_id = ? AND created_at >= ?",
        (ACKED, app_id, since_ms),
    ).fetchone()
    return PushStats(pushes=int(row[0]), ackable=int(row[1]), acked=int(row[2]))

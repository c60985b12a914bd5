"""Reading the message list, the search, and the 30-day retention purge.

Plain functions of a sqlite3 connection, run on the writer thread like
queries.py. The list pages backwards over `messages.seq` (creation order):
a page is "the `limit` newest rows with seq below the cursor", so rows
inserted while a caller pages (they get higher seqs) never shift a page, and
rows purged meanwhile can only drop out, never repeat.
"""

from __future__ import annotations

import sqlite3

from .queries import MSG_COLS, message_from_row
from .records import Message

DAY_MS = 86_400_000
RETENTION_MS = 30 * DAY_MS
"""Records are kept 30 days: created_at >= now - RETENTION_MS is readable."""

LISTED_TYPES = ("simple", "template")
SEARCHABLE_TYPES = ("simple", "template", "multiple")

# The list's WHERE must repeat the partial index's predicate word for word
# (schema.py, `messages_list`) for SQLite to use it.
_LISTED = "push_type IN ('simple', 'template')"
_SEARCHABLE = "push_type IN ('simple', 'template', 'multiple')"


def retention_cutoff(now: int) -> int:
    """The oldest created_at still kept at `now` (inclusive)."""
    return now - RETENTION_MS


def list_messages(
    conn: sqlite3.Connection, app_id: str, *, before_seq: int | None, limit: int, now: int
) -> list[Message]:
    """Up to `limit` listed messages, newest first, with seq < before_seq."""
    sql = f"SELECT {MSG_COLS} FROM messages WHERE app_id = ? AND {_LISTED} AND created_at >= ?"
    args: list[object] = [app_id, retention_cutoff(now)]
    if before_seq is not None:
        sql += " AND seq < ?"
        args.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT ?"
    args.append(limit)
    return [message_from_row(r) for r in conn.execute(sql, args)]


def search_message(
    conn: sqlite3.Connection, app_id: str, target_id: str, msg_key: str, now: int
) -> Message | None:
    """The message with this exact target and customer message ID, if kept and searchable."""
    row = conn.execute(
        f"SELECT {MSG_COLS} FROM messages WHERE app_id = ? AND target_id = ? AND msg_key = ?"
        f" AND {_SEARCHABLE} AND created_at >= ?",
        (app_id, target_id, msg_key, retention_cutoff(now)),
    ).fetchone()
    return None if row is None else message_from_row(row)


def purge_before(conn: sqlite3.Connection, cutoff: int, limit: int) -> int:
    """Delete up to `limit` messages created before `cutoff`, with their deliveries.

    Returns how many messages went; fewer than `limit` means none is left.
    """
    seqs = [
        int(r[0])
        for r in conn.execute(
            "SELECT seq FROM messages WHERE created_at < ? ORDER BY created_at LIMIT ?",
            (cutoff, limit),
        )
    ]
    if not seqs:
        return 0
    marks = ",".join("?" * len(seqs))
    conn.execute(f"DELETE FROM deliveries WHERE message_seq IN ({marks})", seqs)
    conn.execute(f"DELETE FROM messages WHERE seq IN ({marks})", seqs)
    return len(seqs)

"""Reading the message list, the search, and the 30-day retention purge.

Plain functions of a sqlite3 connection, run on the writer thread like
queries.py. The list pages backwards over `messages.seq` (creation order):
a page is "the `limit` newest rows with seq below the cursor", so rows
inserted while a caller pages (they get higher seqs) never shift a page, and
rows purged meanwhile can only drop out, never repeat.
"""

from __future__ import annotations

import sqlite3

from gateway.ids import id_floor

from .queries import MSG_COLS, message_from_row
from .records import Message
from .retention import retention_cutoff

# The list's WHERE must repeat the partial index's predicate word for word
# (schema.py, `messages_list`) for SQLite to use it.
_LISTED = "push_type IN ('simple', 'template')"
_SEARCHABLE = "push_type IN ('simple', 'template', 'multiple')"


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


def purge_before(conn: sqlite3.Connection, cutoff: int, max_rows: int) -> tuple[int, int]:
    """Delete at most `max_rows` rows of each table of what was created before `cutoff`.

    The oldest messages' deliveries go first (a broadcast may have 20,000), then
    the messages left with none (a message to one device takes its delivery,
    held in its row, along: counted as a delivery too). Returns (messages,
    deliveries) deleted: (0, 0) means nothing older than `cutoff` is left. One
    call is one small piece of work on the writer thread, whatever the shape
    of the old data.
    """
    # Message IDs start with their creation time (gateway/ids.py), so the
    # message_id index orders messages by age: no index of its own for this.
    seqs = [
        int(r[0])
        for r in conn.execute(
            "SELECT seq FROM messages WHERE message_id < ? AND created_at < ?"
            " ORDER BY message_id LIMIT ?",
            (id_floor(cutoff), cutoff, max_rows),
        )
    ]
    if not seqs:
        return 0, 0
    marks = ",".join("?" * len(seqs))
    keys = conn.execute(
        f"SELECT message_seq, device_id FROM deliveries WHERE message_seq IN ({marks}) LIMIT ?",
        [*seqs, max_rows],
    ).fetchall()
    conn.executemany("DELETE FROM deliveries WHERE message_seq = ? AND device_id = ?", keys)
    # A message to one device takes its delivery (folded into its row) along.
    gone = conn.execute(
        f"DELETE FROM messages WHERE seq IN ({marks}) AND NOT EXISTS"
        " (SELECT 1 FROM deliveries WHERE message_seq = messages.seq)"
        " RETURNING d_state IS NOT NULL",
        seqs,
    ).fetchall()
    return len(gone), len(keys) + sum(1 for (folded,) in gone if folded)

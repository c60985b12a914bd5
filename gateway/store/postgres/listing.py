"""The message list, the search, retention, broadcasts and the console's numbers.

Plain functions of a psycopg connection, as queries.py. The list pages
backwards over `seq` (creation order), like the SQLite store's listing.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..records import BroadcastStats, Message
from ..retention import retention_cutoff
from ..stats import DAY_MS, PushStats
from .rows import MSG_COLS, WAITING, message_from_row
from .tx import Connection, Tx

# The list's WHERE repeats the partial index's predicate (schema.py, messages_list).
_LISTED = "push_type IN ('simple', 'template')"
_SEARCHABLE = "push_type IN ('simple', 'template', 'multiple')"


def list_messages(
    conn: Connection, app_id: str, *, before_seq: int | None, limit: int, now: int
) -> list[Message]:
    """Up to `limit` listed messages, newest first, with seq < before_seq."""
    sql = f"SELECT {MSG_COLS} FROM messages WHERE app_id = %s AND {_LISTED} AND created_at >= %s"
    args: list[object] = [app_id, retention_cutoff(now)]
    if before_seq is not None:
        sql += " AND seq < %s"
        args.append(before_seq)
    sql += " ORDER BY seq DESC LIMIT %s"
    args.append(limit)
    return [message_from_row(r) for r in conn.execute(sql, args).fetchall()]


def search_message(
    conn: Connection, app_id: str, target_id: str, msg_key: str, now: int
) -> Message | None:
    row = conn.execute(
        f"SELECT {MSG_COLS} FROM messages WHERE app_id = %s AND target_id = %s AND msg_key = %s"
        f" AND {_SEARCHABLE} AND created_at >= %s",
        (app_id, target_id, msg_key, retention_cutoff(now)),
    ).fetchone()
    return None if row is None else message_from_row(row)


def purge_before(tx: Tx, *, cutoff: int, max_rows: int) -> tuple[int, int]:
    """Delete at most `max_rows` rows of each table of what was created before `cutoff`:
    the oldest messages' deliveries first, then the messages left with none."""
    conn = tx.conn
    seqs = [
        int(r[0])
        for r in conn.execute(
            "SELECT seq FROM messages WHERE created_at < %s ORDER BY created_at LIMIT %s",
            (cutoff, max_rows),
        ).fetchall()
    ]
    if not seqs:
        return 0, 0
    deliveries = conn.execute(
        "DELETE FROM deliveries WHERE ctid = ANY(ARRAY(SELECT ctid FROM deliveries"
        " WHERE message_seq = ANY(%s) LIMIT %s))",
        (seqs, max_rows),
    ).rowcount
    gone = conn.execute(
        "DELETE FROM messages WHERE seq = ANY(%s) AND NOT EXISTS"
        " (SELECT 1 FROM deliveries WHERE message_seq = messages.seq)",
        (seqs,),
    ).rowcount
    return gone, deliveries


# --- broadcasts -----------------------------------------------------------------

_BROADCAST = "push_type = 'broadcast'"


def open_broadcast(
    tx: Tx, *, app_id: str, seq: int, online: Sequence[tuple[str, str]], now: int
) -> list[str]:
    """Open the broadcast's deliveries for online (device_id, platform) pairs; the
    devices whose delivery this call opened (a revoked, expired or unapproved
    broadcast opens nothing)."""
    if not online:
        return []
    pairs = sorted(online)
    rows = tx.conn.execute(
        "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT m.seq, m.app_id, o.d, 0, %s, %s FROM messages m,"
        " unnest(%s::text[], %s::text[]) AS o(d, p)"
        f" WHERE m.seq = %s AND m.app_id = %s AND m.{_BROADCAST} AND NOT m.revoked"
        " AND m.status <> %s AND m.expires_at > %s AND (m.platform IS NULL OR m.platform = o.p)"
        " ORDER BY o.d ON CONFLICT DO NOTHING RETURNING device_id",
        (now, now, [p[0] for p in pairs], [p[1] for p in pairs], seq, app_id, WAITING, now),
    ).fetchall()
    return [str(r[0]) for r in rows]


def broadcast_stats(conn: Connection, app_id: str, message_id: str) -> BroadcastStats | None:
    row = conn.execute(
        f"SELECT {MSG_COLS} FROM messages WHERE app_id = %s AND message_id = %s AND {_BROADCAST}",
        (app_id, message_id),
    ).fetchone()
    if row is None:
        return None
    message = message_from_row(row)
    counts = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE sent_at IS NOT NULL OR status = 2),"
        " count(*) FILTER (WHERE status = 2) FROM deliveries WHERE message_seq = %s",
        (message.seq,),
    ).fetchone()
    assert counts is not None
    targeted, delivered, acked = (int(c) for c in counts)
    return BroadcastStats(message, targeted, delivered, acked)


# --- the console's numbers ------------------------------------------------------


def push_stats(conn: Connection, app_id: str, since_ms: int) -> PushStats:
    """The app's messages created since `since_ms`, which must start a UTC day."""
    if since_ms % DAY_MS:
        raise ValueError("push_stats counts whole UTC days: since_ms must be a multiple of a day")
    row = conn.execute(
        "SELECT coalesce(sum(pushes), 0), coalesce(sum(ackable), 0), coalesce(sum(acked), 0)"
        " FROM daily_counts WHERE app_id = %s AND day >= %s",
        (app_id, since_ms // DAY_MS),
    ).fetchone()
    assert row is not None
    pushes, ackable, acked = (int(c) for c in row)
    return PushStats(pushes=pushes, ackable=ackable, acked=acked)

"""Broadcasts: a delivery per device, opened as devices are seen.

Plain functions of a sqlite3 connection, run on the writer thread like
queries.py. (Devices that come online later get theirs in devices.py.)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from .queries import MSG_COLS, WAITING, message_from_row
from .records import BroadcastStats

# Repeats the partial index's predicate (schema.py, `messages_broadcasts`).
_BROADCAST = "push_type = 'broadcast'"


def open_broadcast(
    conn: sqlite3.Connection,
    app_id: str,
    seq: int,
    online: Sequence[tuple[str, str]],
    now: int,
) -> list[str]:
    """Open the broadcast's deliveries for online (device_id, platform) pairs.

    Returns the devices whose delivery this call opened: a device that has
    one already (opened by its hello, or acked long ago) is not returned, so
    the caller sends each device its copy once. A broadcast that is revoked,
    expired or not approved opens nothing.
    """
    if not online:
        return []
    rows = conn.execute(
        "INSERT OR IGNORE INTO deliveries"
        " (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT m.seq, m.app_id, json_extract(j.value, '$[0]'), 0, ?, ?"
        " FROM messages m, json_each(?) j"
        f" WHERE m.seq = ? AND m.app_id = ? AND m.{_BROADCAST} AND m.revoked = 0"
        " AND m.status <> ? AND m.expires_at > ?"
        " AND (m.platform IS NULL OR m.platform = json_extract(j.value, '$[1]'))"
        " RETURNING device_id",
        (now, now, json.dumps([list(p) for p in online]), seq, app_id, WAITING, now),
    ).fetchall()
    return [str(r[0]) for r in rows]


def broadcast_stats(
    conn: sqlite3.Connection, app_id: str, message_id: str
) -> BroadcastStats | None:
    row = conn.execute(
        f"SELECT {MSG_COLS} FROM messages WHERE app_id = ? AND message_id = ? AND {_BROADCAST}",
        (app_id, message_id),
    ).fetchone()
    if row is None:
        return None
    message = message_from_row(row)
    targeted, delivered, acked = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE sent_at IS NOT NULL OR status = 2),"
        " count(*) FILTER (WHERE status = 2) FROM deliveries WHERE message_seq = ?",
        (message.seq,),
    ).fetchone()
    return BroadcastStats(message, int(targeted), int(delivered), int(acked))

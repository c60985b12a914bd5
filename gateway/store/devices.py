"""A device's side of the store: online and offline, its pending deliveries page
by page, its binding to a user.

Plain functions of a sqlite3 connection, run on the writer thread inside a
group-commit transaction like queries.py. A device's backlog is never read
whole: `pending_page` reads at most `limit` messages after a cursor (the
message `seq`, which orders messages by creation), so one device with 50,000
queued messages holds the writer thread for one page at a time.
"""

from __future__ import annotations

import sqlite3

from .queries import MSG_COLS, WAITING, message_from_row
from .records import DeviceInfo, Message

_M_COLS = ", ".join("m." + c.strip() for c in MSG_COLS.split(","))

# Broadcasts still open reach a device once: a delivery row per device,
# opened lazily when it comes online (INSERT OR IGNORE keeps an acked one
# acked). `push_type = 'broadcast'` repeats the partial index's predicate
# (schema.py, `messages_broadcasts`) for SQLite to use it.
_OPEN_BROADCASTS = (
    "INSERT OR IGNORE INTO deliveries"
    " (message_seq, app_id, device_id, status, created_at, modified_at)"
    " SELECT seq, app_id, ?, 0, ?, ? FROM messages"
    " WHERE app_id = ? AND push_type = 'broadcast' AND expires_at > ? AND revoked = 0"
    " AND status <> ? AND (platform IS NULL OR platform = ?)"
)


def pending_page(
    conn: sqlite3.Connection,
    app_id: str,
    device_id: str,
    *,
    after_seq: int,
    limit: int,
    now: int,
    user_id: str | None = None,
    upto_seq: int | None = None,
) -> tuple[str | None, list[Message]]:
    """The device's user now, and up to `limit` messages to send to it, with
    after_seq < seq <= upto_seq, in creation order.

    Deliverable: the delivery is not acked, the message neither expired,
    revoked nor waiting for verification. With `user_id`, only that user's
    messages (the catch-up after a bind).
    """
    deliverable = " AND m.expires_at > ? AND m.revoked = 0 AND m.status <> ?"
    upto = "" if upto_seq is None else " AND d.message_seq <= ?"
    # d.message_seq (not m.seq, the same value) so the page comes in index order, unsorted.
    sql = (
        f"SELECT d.message_seq, {_M_COLS[len('m.seq, ') :]}"
        " FROM deliveries d JOIN messages m ON m.seq = d.message_seq"
        f" WHERE d.app_id = ? AND d.device_id = ? AND d.status = 0 AND d.message_seq > ?{upto}"
        + deliverable
    )
    args: list[object] = [app_id, device_id, after_seq]
    args += [] if upto_seq is None else [upto_seq]
    args += [now, WAITING]
    if user_id is not None:
        sql += " AND m.delivery_type = 'user' AND m.target_id = ?"
        args.append(user_id)
    else:
        # The messages to this one device, their delivery in their own row
        # (the partial index `messages_pending`); SQLite merges both arms in seq order.
        sql += (
            f" UNION ALL SELECT {_M_COLS} FROM messages m WHERE m.app_id = ? AND m.target_id = ?"
            f" AND m.d_state = 0 AND m.seq > ?{upto.replace('d.message_seq', 'm.seq')}"
            + deliverable
        )
        args += [app_id, device_id, after_seq]
        args += [] if upto_seq is None else [upto_seq]
        args += [now, WAITING]
    sql += " ORDER BY 1 LIMIT ?"
    args.append(limit)
    return _user_of(conn, app_id, device_id), [message_from_row(r) for r in conn.execute(sql, args)]


def _user_of(conn: sqlite3.Connection, app_id: str, device_id: str) -> str | None:
    row = conn.execute(
        "SELECT user_id FROM devices WHERE app_id = ? AND device_id = ?", (app_id, device_id)
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def device_online(
    conn: sqlite3.Connection, app_id: str, device_id: str, platform: str, now: int, limit: int
) -> tuple[str | None, list[Message]]:
    """A device completed hello: record it; returns its user and the first page of its backlog."""
    conn.execute(
        "INSERT INTO devices (app_id, device_id, platform, last_seen, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(app_id, device_id) DO UPDATE SET platform = excluded.platform,"
        " last_seen = excluded.last_seen",
        (app_id, device_id, platform, now, now),
    )
    conn.execute(_OPEN_BROADCASTS, (device_id, now, now, app_id, now, WAITING, platform))
    return pending_page(conn, app_id, device_id, after_seq=0, limit=limit, now=now)


def device_offline(conn: sqlite3.Connection, app_id: str, device_id: str, now: int) -> None:
    conn.execute(
        "UPDATE devices SET last_seen = ? WHERE app_id = ? AND device_id = ?",
        (now, app_id, device_id),
    )


def _drop_user_deliveries(
    conn: sqlite3.Connection, app_id: str, device_id: str, user_id: str, now: int
) -> None:
    """The device left `user_id`: its undelivered copies of that user's messages go."""
    dropped = conn.execute(
        "DELETE FROM deliveries WHERE app_id = ? AND device_id = ? AND status = 0"
        " AND message_seq IN (SELECT seq FROM messages WHERE app_id = ?"
        " AND delivery_type = 'user' AND target_id = ?) RETURNING message_seq",
        (app_id, device_id, app_id, user_id),
    ).fetchall()
    # A message left with no device to go to is NoBindInfo again.
    conn.executemany(
        "UPDATE messages SET status = 1, modified_at = ? WHERE seq = ? AND status = 0"
        " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_seq = messages.seq)",
        [(now, int(r[0])) for r in dropped],
    )


def bind(
    conn: sqlite3.Connection, app_id: str, device_id: str, user_id: str, now: int
) -> int | None:
    """Bind a device to a user, and give it a delivery of each of the user's waiting messages.

    Returns the highest `seq` among the messages this attached to the device
    (None if none): its catch-up is `pending_page(user_id=..., upto_seq=...)`.
    """
    row = conn.execute(
        "SELECT user_id FROM devices WHERE app_id = ? AND device_id = ?", (app_id, device_id)
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO devices (app_id, device_id, user_id, created_at) VALUES (?, ?, ?, ?)",
            (app_id, device_id, user_id, now),
        )
    else:
        old = row[0]
        if old is not None and old != user_id:
            _drop_user_deliveries(conn, app_id, device_id, str(old), now)
        conn.execute(
            "UPDATE devices SET user_id = ? WHERE app_id = ? AND device_id = ?",
            (user_id, app_id, device_id),
        )
    attached = conn.execute(
        "INSERT OR IGNORE INTO deliveries"
        " (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT seq, app_id, ?, 0, ?, ? FROM messages"
        " WHERE app_id = ? AND delivery_type = 'user' AND target_id = ?"
        " AND status IN (0, 1) AND expires_at > ? AND revoked = 0"
        " RETURNING message_seq",
        (device_id, now, now, app_id, user_id, now),
    ).fetchall()
    seqs = [int(r[0]) for r in attached]
    conn.executemany(
        "UPDATE messages SET status = 0, modified_at = ? WHERE seq = ? AND status = 1",
        [(now, s) for s in seqs],
    )
    return max(seqs) if seqs else None


def unbind(conn: sqlite3.Connection, app_id: str, device_id: str, now: int) -> str | None:
    """Remove the device's binding; returns the user it was bound to."""
    row = conn.execute(
        "SELECT user_id FROM devices WHERE app_id = ? AND device_id = ?", (app_id, device_id)
    ).fetchone()
    if row is None or row[0] is None:
        return None
    old = str(row[0])
    _drop_user_deliveries(conn, app_id, device_id, old, now)
    conn.execute(
        "UPDATE devices SET user_id = NULL WHERE app_id = ? AND device_id = ?", (app_id, device_id)
    )
    return old


def get_device(conn: sqlite3.Connection, app_id: str, device_id: str) -> DeviceInfo | None:
    row = conn.execute(
        "SELECT device_id, platform, user_id, last_seen FROM devices"
        " WHERE app_id = ? AND device_id = ?",
        (app_id, device_id),
    ).fetchone()
    return None if row is None else DeviceInfo(*row)


def user_devices(conn: sqlite3.Connection, app_id: str, user_id: str) -> list[DeviceInfo]:
    rows = conn.execute(
        "SELECT device_id, platform, user_id, last_seen FROM devices"
        " WHERE app_id = ? AND user_id = ? ORDER BY +device_id",
        (app_id, user_id),
    ).fetchall()
    return [DeviceInfo(*r) for r in rows]

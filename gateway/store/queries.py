"""The store's operations as plain functions of a sqlite3 connection.

They run on the writer thread, inside a group-commit transaction (see
writer.py), so each one is atomic and none of them commits by itself.
Hot paths use plain SQL with executemany; sqlite-utils is for the schema.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace

from gateway.ids import new_id
from protocol.status_codes import Status

from .records import (
    App,
    BroadcastStats,
    Delivery,
    DeviceInfo,
    Message,
    MsgKeyConflict,
    NewMessage,
    NotWaitingForVerify,
    PushOutcome,
    Template,
)

MSG_COLS = (
    "seq, message_id, app_id, msg_key, push_type, delivery_type, target_id, title, content,"
    " ext, created_at, expires_at, modified_at, status"
)
_CHUNK = 500
WAITING = int(Status.WAITING_FOR_VERIFY)
PENDING = int(Status.DEVICE_NOT_ONLINE_OR_NO_RESPONSE)
NO_BIND = int(Status.NO_BIND_INFO)
ACKED = int(Status.ACKED)
# messages.verification: NULL when the app does not verify its pushes.
VERIFY_PENDING, VERIFY_APPROVED, VERIFY_REJECTED = "pending", "approved", "rejected"


def message_from_row(row: Sequence[object]) -> Message:
    return Message(
        seq=int(row[0]),  # type: ignore[call-overload]
        message_id=str(row[1]),
        app_id=str(row[2]),
        msg_key=str(row[3]),
        push_type=str(row[4]),
        delivery_type=str(row[5]),
        target_id=str(row[6]),
        title=str(row[7]),
        content=str(row[8]),
        ext=json.loads(str(row[9])),
        created_at=int(row[10]),  # type: ignore[call-overload]
        expires_at=int(row[11]),  # type: ignore[call-overload]
        modified_at=int(row[12]),  # type: ignore[call-overload]
        status=int(row[13]),  # type: ignore[call-overload]
    )


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


# --- apps -----------------------------------------------------------------------


def upsert_app(
    conn: sqlite3.Connection,
    *,
    app_id: str,
    name: str,
    api_key: str,
    secret: str,
    verify: bool,
    now: int,
) -> App:
    conn.execute(
        "INSERT INTO apps (app_id, name, api_key_hash, secret, verify, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(app_id) DO UPDATE SET api_key_hash=excluded.api_key_hash,"
        " secret=excluded.secret, verify=excluded.verify",
        (app_id, name, hash_api_key(api_key), secret, int(verify), now),
    )
    return App(app_id=app_id, name=name, secret=secret, verify=verify)


def _app(row: Sequence[object] | None) -> App | None:
    if row is None:
        return None
    return App(app_id=str(row[0]), name=str(row[1]), secret=str(row[2]), verify=bool(row[3]))


def app_by_api_key(conn: sqlite3.Connection, api_key: str) -> App | None:
    return _app(
        conn.execute(
            "SELECT app_id, name, secret, verify FROM apps WHERE api_key_hash = ?",
            (hash_api_key(api_key),),
        ).fetchone()
    )


def get_app(conn: sqlite3.Connection, app_id: str) -> App | None:
    return _app(
        conn.execute(
            "SELECT app_id, name, secret, verify FROM apps WHERE app_id = ?", (app_id,)
        ).fetchone()
    )


def count_apps(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM apps").fetchone()[0])


# --- messages -------------------------------------------------------------------


def content_hash(item: NewMessage) -> str:
    """What "the same content" means for a repeated (target_id, msg_key)."""
    canonical = json.dumps(
        [item.push_type, item.delivery_type, item.title, item.content, item.ext, item.platform],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bound_devices(conn: sqlite3.Connection, app_id: str, user_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE app_id = ? AND user_id = ? ORDER BY device_id",
        (app_id, user_id),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _insert_deliveries(
    conn: sqlite3.Connection, app_id: str, seq: int, device_ids: Iterable[str], now: int
) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO deliveries"
        " (message_seq, app_id, device_id, status, created_at, modified_at)"
        " VALUES (?, ?, ?, 0, ?, ?)",
        [(seq, app_id, d, now, now) for d in device_ids],
    )


def insert_messages(
    conn: sqlite3.Connection, app: App, items: Sequence[NewMessage], now: int
) -> list[PushOutcome]:
    """Store messages and their deliveries; all or nothing (one savepoint)."""
    outcomes: list[PushOutcome] = []
    for index, item in enumerate(items):
        digest = content_hash(item)
        if item.msg_key is not None:
            existing = conn.execute(
                f"SELECT {MSG_COLS}, content_hash FROM messages"
                " WHERE app_id = ? AND target_id = ? AND msg_key = ?",
                (app.app_id, item.target_id, item.msg_key),
            ).fetchone()
            if existing is not None:
                if existing[-1] != digest:
                    raise MsgKeyConflict(item.target_id, item.msg_key, index)
                outcomes.append(PushOutcome(message_from_row(existing), True, ()))
                continue
        message_id = new_id(now)
        msg_key = item.msg_key or message_id
        device_ids: list[str] = []
        if app.verify:
            status = WAITING  # no delivery until approved (verify())
        else:
            status, device_ids = _first_targets(conn, app.app_id, item)
        expires_at = now + item.expired_seconds * 1000
        cur = conn.execute(
            "INSERT INTO messages (message_id, app_id, msg_key, push_type, delivery_type,"
            " target_id, title, content, ext, template, platform, content_hash, created_at,"
            " expires_at, modified_at, status, verification)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                app.app_id,
                msg_key,
                item.push_type,
                item.delivery_type,
                item.target_id,
                item.title,
                item.content,
                json.dumps(item.ext, ensure_ascii=False),
                item.template,
                item.platform,
                digest,
                now,
                expires_at,
                now,
                status,
                VERIFY_PENDING if app.verify else None,
            ),
        )
        seq = cur.lastrowid
        assert seq is not None
        _insert_deliveries(conn, app.app_id, seq, device_ids, now)
        message = Message(
            seq=seq,
            message_id=message_id,
            app_id=app.app_id,
            msg_key=msg_key,
            push_type=item.push_type,
            delivery_type=item.delivery_type,
            target_id=item.target_id,
            title=item.title,
            content=item.content,
            ext=dict(item.ext),
            created_at=now,
            expires_at=expires_at,
            modified_at=now,
            status=status,
            verification=VERIFY_PENDING if app.verify else None,
        )
        outcomes.append(PushOutcome(message, False, tuple(device_ids)))
    return outcomes


def _first_targets(
    conn: sqlite3.Connection, app_id: str, item: NewMessage | Message
) -> tuple[int, list[str]]:
    """A message entering the flow: its status and the devices it goes to now.

    A broadcast's deliveries are opened per device as devices are seen
    (open_broadcast, device_online), so it starts with none.
    """
    if item.push_type == "broadcast":
        return PENDING, []
    if item.delivery_type == "user":
        device_ids = _bound_devices(conn, app_id, item.target_id)
        return (PENDING if device_ids else NO_BIND), device_ids
    return PENDING, [item.target_id]


def get_message(
    conn: sqlite3.Connection, app_id: str, message_id: str
) -> tuple[Message, list[Delivery]] | None:
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    deliveries = [
        Delivery(
            device_id=str(r[0]),
            status=int(r[1]),
            channel=str(r[2]),
            code=None if r[3] is None else int(r[3]),
            created_at=int(r[4]),
            sent_at=None if r[5] is None else int(r[5]),
            acked_at=None if r[6] is None else int(r[6]),
            modified_at=int(r[7]),
        )
        for r in conn.execute(
            "SELECT device_id, status, channel, code, created_at, sent_at, acked_at, modified_at"
            " FROM deliveries WHERE message_seq = ? ORDER BY device_id",
            (message.seq,),
        )
    ]
    return message, deliveries


# --- devices, sessions, acks ---------------------------------------------------


def _pending_for_device(
    conn: sqlite3.Connection, app_id: str, device_id: str, now: int, *, user_id: str | None = None
) -> list[Message]:
    sql = (
        f"SELECT {', '.join('m.' + c.strip() for c in MSG_COLS.split(','))}"
        " FROM deliveries d JOIN messages m ON m.seq = d.message_seq"
        " WHERE d.app_id = ? AND d.device_id = ? AND d.status = 0"
        " AND m.expires_at > ? AND m.revoked = 0 AND m.status <> ?"
    )
    args: list[object] = [app_id, device_id, now, WAITING]
    if user_id is not None:
        sql += " AND m.delivery_type = 'user' AND m.target_id = ?"
        args.append(user_id)
    sql += " ORDER BY d.message_seq"
    return [message_from_row(r) for r in conn.execute(sql, args)]


def device_online(
    conn: sqlite3.Connection, app_id: str, device_id: str, platform: str, now: int
) -> tuple[str | None, list[Message]]:
    """A device completed hello: record it, and return its user and its backlog."""
    conn.execute(
        "INSERT INTO devices (app_id, device_id, platform, last_seen, created_at)"
        " VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(app_id, device_id) DO UPDATE SET platform = excluded.platform,"
        " last_seen = excluded.last_seen",
        (app_id, device_id, platform, now, now),
    )
    row = conn.execute(
        "SELECT user_id FROM devices WHERE app_id = ? AND device_id = ?", (app_id, device_id)
    ).fetchone()
    user_id = None if row is None or row[0] is None else str(row[0])
    # Broadcasts still open reach this device once: a delivery row per device,
    # opened here lazily (INSERT OR IGNORE keeps an acked one acked).
    conn.execute(
        "INSERT OR IGNORE INTO deliveries"
        " (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT seq, app_id, ?, 0, ?, ? FROM messages"
        f" WHERE app_id = ? AND {_BROADCAST} AND expires_at > ? AND revoked = 0"
        " AND status <> ? AND (platform IS NULL OR platform = ?)",
        (device_id, now, now, app_id, now, WAITING, platform),
    )
    return user_id, _pending_for_device(conn, app_id, device_id, now)


def device_offline(conn: sqlite3.Connection, app_id: str, device_id: str, now: int) -> None:
    conn.execute(
        "UPDATE devices SET last_seen = ? WHERE app_id = ? AND device_id = ?",
        (now, app_id, device_id),
    )


def ack(
    conn: sqlite3.Connection, app_id: str, device_id: str, message_ids: Sequence[str], now: int
) -> list[int]:
    """Mark this device's deliveries acked; returns the sequence numbers changed.

    IDs that are not this device's pending deliveries change nothing.
    """
    acked: list[int] = []
    for chunk in _chunks(list(dict.fromkeys(message_ids))):
        rows = conn.execute(
            "UPDATE deliveries SET status = 2, acked_at = ?, modified_at = ?,"
            " sent_at = coalesce(sent_at, ?)"
            " WHERE app_id = ? AND device_id = ? AND status = 0 AND message_seq IN"
            # `+app_id`: with several ids SQLite would otherwise walk the app's
            # whole created_at index instead of looking each message_id up.
            " (SELECT seq FROM messages WHERE +app_id = ?"
            f" AND message_id IN ({_marks(len(chunk))}))"
            " RETURNING message_seq",
            (now, now, now, app_id, device_id, app_id, *chunk),
        ).fetchall()
        acked.extend(int(r[0]) for r in rows)
    for seq_chunk in _chunks([str(s) for s in acked]):
        conn.execute(
            "UPDATE messages SET status = 2, modified_at = ?"
            f" WHERE seq IN ({_marks(len(seq_chunk))}) AND status <> 2",
            (now, *seq_chunk),
        )
    return acked


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
) -> list[Message]:
    """Bind a device to a user; returns the user's messages now to send to it."""
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
    waiting = conn.execute(
        "SELECT seq FROM messages WHERE app_id = ? AND delivery_type = 'user' AND target_id = ?"
        " AND status IN (0, 1) AND expires_at > ? AND revoked = 0"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_seq = messages.seq"
        " AND d.device_id = ?)",
        (app_id, user_id, now, device_id),
    ).fetchall()
    seqs = [int(r[0]) for r in waiting]
    conn.executemany(
        "INSERT OR IGNORE INTO deliveries"
        " (message_seq, app_id, device_id, status, created_at, modified_at)"
        " VALUES (?, ?, ?, 0, ?, ?)",
        [(s, app_id, device_id, now, now) for s in seqs],
    )
    conn.executemany(
        "UPDATE messages SET status = 0, modified_at = ? WHERE seq = ? AND status = 1",
        [(now, s) for s in seqs],
    )
    if not seqs:
        return []
    attached = set(seqs)
    return [
        m
        for m in _pending_for_device(conn, app_id, device_id, now, user_id=user_id)
        if m.seq in attached
    ]


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
        " WHERE app_id = ? AND user_id = ? ORDER BY device_id",
        (app_id, user_id),
    ).fetchall()
    return [DeviceInfo(*r) for r in rows]


# --- templates ------------------------------------------------------------------


def put_template(
    conn: sqlite3.Connection, app_id: str, name: str, title: str, content: str, now: int
) -> tuple[Template, bool]:
    """Create or replace a template; True when it is new."""
    existed = conn.execute(
        "SELECT 1 FROM templates WHERE app_id = ? AND name = ?", (app_id, name)
    ).fetchone()
    conn.execute(
        "INSERT INTO templates (app_id, name, title, content, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(app_id, name) DO UPDATE SET title = excluded.title,"
        " content = excluded.content, updated_at = excluded.updated_at",
        (app_id, name, title, content, now),
    )
    return Template(name=name, title=title, content=content, updated_at=now), existed is None


def get_template(conn: sqlite3.Connection, app_id: str, name: str) -> Template | None:
    row = conn.execute(
        "SELECT name, title, content, updated_at FROM templates WHERE app_id = ? AND name = ?",
        (app_id, name),
    ).fetchone()
    return None if row is None else Template(str(row[0]), str(row[1]), str(row[2]), int(row[3]))


def delete_template(conn: sqlite3.Connection, app_id: str, name: str) -> bool:
    cur = conn.execute("DELETE FROM templates WHERE app_id = ? AND name = ?", (app_id, name))
    return cur.rowcount > 0


# --- broadcasts -----------------------------------------------------------------

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


def mark_sent(
    conn: sqlite3.Connection, app_id: str, device_id: str, message_ids: Sequence[str], now: int
) -> int:
    """Record that these pushes were written to the device's socket (first write wins)."""
    if not message_ids:
        return 0
    cur = conn.execute(
        "UPDATE deliveries SET sent_at = ? WHERE app_id = ? AND device_id = ?"
        " AND sent_at IS NULL AND message_seq IN (SELECT seq FROM messages"
        # `+app_id`: look messages up by message_id, never scan the app's index.
        " WHERE message_id IN (SELECT value FROM json_each(?)) AND +app_id = ?)",
        (now, app_id, device_id, json.dumps(list(message_ids)), app_id),
    )
    return cur.rowcount


# --- verification and revocation -----------------------------------------------


def _message_with_state(conn: sqlite3.Connection, app_id: str, message_id: str) -> Message | None:
    row = conn.execute(
        f"SELECT {MSG_COLS}, revoked, verification FROM messages"
        " WHERE app_id = ? AND message_id = ?",
        (app_id, message_id),
    ).fetchone()
    if row is None:
        return None
    verification = None if row[15] is None else str(row[15])
    return replace(message_from_row(row), revoked=bool(row[14]), verification=verification)


def verify(
    conn: sqlite3.Connection, app_id: str, message_id: str, approve: bool, now: int
) -> PushOutcome | None:
    """Approve (the message enters the normal flow) or reject a waiting message.

    Returns the message as it is now, with the devices to send it to now
    (a broadcast's are opened afterwards by open_broadcast); None if the app
    has no such message. A message that is not waiting raises NotWaitingForVerify.
    """
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    if message.revoked:
        raise NotWaitingForVerify(message_id, "revoked")
    if message.verification != VERIFY_PENDING or message.status != WAITING:
        raise NotWaitingForVerify(message_id, message.verification or "not_required")
    if not approve:
        conn.execute(
            "UPDATE messages SET verification = ?, modified_at = ? WHERE seq = ?",
            (VERIFY_REJECTED, now, message.seq),
        )
        rejected = replace(message, verification=VERIFY_REJECTED, modified_at=now)
        return PushOutcome(rejected, False, ())
    if message.expires_at <= now:
        raise NotWaitingForVerify(message_id, "expired")
    status, device_ids = _first_targets(conn, app_id, message)
    _insert_deliveries(conn, app_id, message.seq, device_ids, now)
    conn.execute(
        "UPDATE messages SET status = ?, verification = ?, modified_at = ? WHERE seq = ?",
        (status, VERIFY_APPROVED, now, message.seq),
    )
    approved = replace(message, status=status, verification=VERIFY_APPROVED, modified_at=now)
    return PushOutcome(approved, False, tuple(device_ids))


def revoke(
    conn: sqlite3.Connection, app_id: str, message_id: str, now: int
) -> tuple[Message, list[str]] | None:
    """Mark a message revoked and delete its undelivered (status 0) deliveries.

    Returns the message and the devices whose copy was stopped; None if the
    app has no such message. Revoking again stops nothing more.
    """
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    if not message.revoked:
        conn.execute(
            "UPDATE messages SET revoked = 1, modified_at = ? WHERE seq = ?", (now, message.seq)
        )
        message = replace(message, revoked=True, modified_at=now)
    stopped = conn.execute(
        "DELETE FROM deliveries WHERE message_seq = ? AND status = 0 RETURNING device_id",
        (message.seq,),
    ).fetchall()
    return message, sorted(str(r[0]) for r in stopped)

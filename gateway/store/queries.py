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

from . import stats
from .records import (
    App,
    Delivery,
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
WAITING = int(Status.WAITING_FOR_VERIFY)
PENDING = int(Status.DEVICE_NOT_ONLINE_OR_NO_RESPONSE)
NO_BIND = int(Status.NO_BIND_INFO)
ACKED = int(Status.ACKED)
SELF = "self"  # the channel of a delivery over the device's own socket
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


# json.dumps with these options, without building an encoder per call (the same text).
_canonical_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False).encode
_ext_json = json.JSONEncoder(ensure_ascii=False).encode


def content_hash(item: NewMessage) -> str:
    """What "the same content" means for a repeated (target_id, msg_key)."""
    canonical = _canonical_json(
        [item.push_type, item.delivery_type, item.title, item.content, item.ext, item.platform]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bound_devices(conn: sqlite3.Connection, app_id: str, user_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE app_id = ? AND user_id = ? ORDER BY +device_id",
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
    conn: sqlite3.Connection, app: App, items: Sequence[NewMessage], now: int, kept_since: int
) -> list[PushOutcome]:
    """Store messages and their deliveries; all or nothing (one savepoint).

    A repeated (target_id, msg_key) answers the message kept under it; one
    created before `kept_since` (past the retention window, not yet purged)
    is no longer kept: it is purged here and the push stored anew.
    """
    outcomes: list[PushOutcome] = []
    # The targets of one multiple push share their content: hashed and encoded once.
    last: tuple[NewMessage, str, str, dict[str, str]] | None = None
    for index, item in enumerate(items):
        if last is not None and _same_content(last[0], item):
            _, digest, ext_json, ext = last
        else:
            digest, ext_json, ext = content_hash(item), _ext_json(item.ext), dict(item.ext)
            last = (item, digest, ext_json, ext)
        if item.msg_key is not None:
            existing = conn.execute(
                f"SELECT {MSG_COLS}, content_hash FROM messages"
                " WHERE app_id = ? AND target_id = ? AND msg_key = ?",
                (app.app_id, item.target_id, item.msg_key),
            ).fetchone()
            if existing is not None and int(existing[10]) < kept_since:
                _purge_message(conn, int(existing[0]))
            elif existing is not None:
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
        # A message to one device holds its delivery in its own row.
        folded = folds(item) and bool(device_ids)
        if folded:
            device_ids = [item.target_id]
        cur = conn.execute(
            "INSERT INTO messages (message_id, app_id, msg_key, push_type, delivery_type,"
            " target_id, title, content, ext, template, platform, content_hash, created_at,"
            " expires_at, modified_at, status, verification, d_state, d_channel)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message_id,
                app.app_id,
                msg_key,
                item.push_type,
                item.delivery_type,
                item.target_id,
                item.title,
                item.content,
                ext_json,
                item.template,
                item.platform,
                digest,
                now,
                expires_at,
                now,
                status,
                VERIFY_PENDING if app.verify else None,
                PENDING if folded else None,
                SELF if folded else None,
            ),
        )
        seq = cur.lastrowid
        assert seq is not None
        if not folded:
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
            ext=ext,
            created_at=now,
            expires_at=expires_at,
            modified_at=now,
            status=status,
            verification=VERIFY_PENDING if app.verify else None,
        )
        outcomes.append(PushOutcome(message, False, tuple(device_ids)))
    stored = [o.message for o in outcomes if not o.duplicate]
    if stored:
        stats.count_pushes(conn, app.app_id, now, [m.push_type for m in stored])
    return outcomes


def _same_content(a: NewMessage, b: NewMessage) -> bool:
    """Whether content_hash and the stored ext of `b` are those of `a`."""
    return (
        a.title == b.title
        and a.content == b.content
        and (a.ext is b.ext or a.ext == b.ext)
        and a.push_type == b.push_type
        and a.delivery_type == b.delivery_type
        and a.platform == b.platform
    )


def folds(item: NewMessage | Message) -> bool:
    """Whether the message's delivery lives in its own row (one device, not a broadcast)."""
    return item.push_type != "broadcast" and item.delivery_type != "user"


def _purge_message(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("DELETE FROM deliveries WHERE message_seq = ?", (seq,))
    conn.execute("DELETE FROM messages WHERE seq = ?", (seq,))


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
            " FROM deliveries WHERE message_seq = ?"
            " UNION ALL SELECT target_id, d_state, coalesce(d_channel, 'self'), d_code,"
            " coalesce(d_created_at, created_at), d_sent_at, d_acked_at, modified_at"
            " FROM messages WHERE seq = ? AND d_state IS NOT NULL ORDER BY 1",
            (message.seq, message.seq),
        )
    ]
    return message, deliveries


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
    if folds(message):
        conn.execute(
            "UPDATE messages SET status = ?, verification = ?, modified_at = ?,"
            " d_state = ?, d_channel = ?, d_created_at = ? WHERE seq = ?",
            (status, VERIFY_APPROVED, now, PENDING, SELF, now, message.seq),
        )
    else:
        _insert_deliveries(conn, app_id, message.seq, device_ids, now)
        conn.execute(
            "UPDATE messages SET status = ?, verification = ?, modified_at = ? WHERE seq = ?",
            (status, VERIFY_APPROVED, now, message.seq),
        )
    approved = replace(message, status=status, verification=VERIFY_APPROVED, modified_at=now)
    return PushOutcome(approved, False, tuple(device_ids))


def revoke(
    conn: sqlite3.Connection, app_id: str, message_id: str
) -> tuple[Message, list[str]] | None:
    """Mark a message revoked and delete its undelivered (status 0) deliveries.

    Returns the message and the devices whose copy was stopped; None if the
    app has no such message. Revoking again stops nothing more.
    """
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    if not message.revoked:
        # Not modified_at: that is the time of a status change, and revoking
        # leaves the status as it was.
        conn.execute("UPDATE messages SET revoked = 1 WHERE seq = ?", (message.seq,))
        message = replace(message, revoked=True)
    stopped = conn.execute(
        "DELETE FROM deliveries WHERE message_seq = ? AND status = 0 RETURNING device_id",
        (message.seq,),
    ).fetchall()
    stopped += conn.execute(
        "UPDATE messages SET d_state = NULL, d_channel = NULL, d_code = NULL,"
        " d_created_at = NULL, d_sent_at = NULL WHERE seq = ? AND d_state = 0"
        " RETURNING target_id",
        (message.seq,),
    ).fetchall()
    return message, sorted(str(r[0]) for r in stopped)

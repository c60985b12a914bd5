"""Apps, push details, templates, verification and revocation.

Plain functions of a psycopg connection: the writes run on the writer
thread inside a group commit (writer.py), the reads on a reader (readers.py).
"""

from __future__ import annotations

from dataclasses import replace

from ..queries import hash_api_key
from ..records import App, Delivery, Message, NotWaitingForVerify, PushOutcome, Template
from .locks import lock_users
from .messages import first_targets, insert_deliveries
from .rows import (
    MSG_COLS,
    N_MSG_COLS,
    VERIFY_APPROVED,
    VERIFY_PENDING,
    VERIFY_REJECTED,
    WAITING,
    Row,
    delivery_from_row,
    message_from_row,
)
from .text import from_db, to_db
from .tx import Connection, Tx

# --- apps -----------------------------------------------------------------------


def upsert_app(
    tx: Tx, *, app_id: str, name: str, api_key: str, secret: str, verify: bool, now: int
) -> App:
    tx.conn.execute(
        "INSERT INTO apps (app_id, name, api_key_hash, secret, verify, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (app_id) DO UPDATE SET api_key_hash = excluded.api_key_hash,"
        " secret = excluded.secret, verify = excluded.verify",
        (app_id, name, hash_api_key(api_key), secret, verify, now),
    )
    return App(app_id=app_id, name=name, secret=secret, verify=verify)


def _app(row: Row | None) -> App | None:
    if row is None:
        return None
    return App(app_id=row[0], name=row[1], secret=row[2], verify=bool(row[3]))


def app_by_api_key(conn: Connection, api_key: str) -> App | None:
    return _app(
        conn.execute(
            "SELECT app_id, name, secret, verify FROM apps WHERE api_key_hash = %s",
            (hash_api_key(api_key),),
        ).fetchone()
    )


def get_app(conn: Connection, app_id: str) -> App | None:
    return _app(
        conn.execute(
            "SELECT app_id, name, secret, verify FROM apps WHERE app_id = %s", (app_id,)
        ).fetchone()
    )


def count_apps(conn: Connection) -> int:
    row = conn.execute("SELECT count(*) FROM apps").fetchone()
    assert row is not None
    return int(row[0])


# --- push details ---------------------------------------------------------------


def _message_with_state(conn: Connection, app_id: str, message_id: str) -> Message | None:
    row = conn.execute(
        f"SELECT {MSG_COLS}, revoked, verification FROM messages"
        " WHERE app_id = %s AND message_id = %s",
        (app_id, message_id),
    ).fetchone()
    if row is None:
        return None
    revoked, verification = row[N_MSG_COLS], row[N_MSG_COLS + 1]
    return replace(message_from_row(row), revoked=bool(revoked), verification=verification)


def get_message(
    conn: Connection, app_id: str, message_id: str
) -> tuple[Message, list[Delivery]] | None:
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    rows = conn.execute(
        "SELECT device_id, status, channel, code, created_at, sent_at, acked_at, modified_at"
        ' FROM deliveries WHERE message_seq = %s ORDER BY device_id COLLATE "C"',
        (message.seq,),
    ).fetchall()
    return message, [delivery_from_row(r) for r in rows]


# --- templates ------------------------------------------------------------------


def put_template(
    tx: Tx, *, app_id: str, name: str, title: str, content: str, now: int
) -> tuple[Template, bool]:
    """Create or replace a template; True when it is new."""
    row = tx.conn.execute(
        "INSERT INTO templates (app_id, name, title, content, updated_at)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (app_id, name) DO UPDATE SET title = excluded.title,"
        " content = excluded.content, updated_at = excluded.updated_at"
        " RETURNING xmax = 0",
        (app_id, name, to_db(title), to_db(content), now),
    ).fetchone()
    assert row is not None
    return Template(name=name, title=title, content=content, updated_at=now), bool(row[0])


def get_template(conn: Connection, app_id: str, name: str) -> Template | None:
    row = conn.execute(
        "SELECT name, title, content, updated_at FROM templates WHERE app_id = %s AND name = %s",
        (app_id, name),
    ).fetchone()
    if row is None:
        return None
    return Template(row[0], from_db(row[1]), from_db(row[2]), int(row[3]))


def delete_template(tx: Tx, *, app_id: str, name: str) -> bool:
    cur = tx.conn.execute("DELETE FROM templates WHERE app_id = %s AND name = %s", (app_id, name))
    return cur.rowcount > 0


# --- verification and revocation -----------------------------------------------


def _bound_devices(conn: Connection, app_id: str, user_id: str) -> list[str]:
    lock_users(conn, [(app_id, user_id)])  # as a push to the user (locks.py)
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE app_id = %s AND user_id = %s"
        ' ORDER BY device_id COLLATE "C"',
        (app_id, user_id),
    ).fetchall()
    return [r[0] for r in rows]


def verify(tx: Tx, *, app_id: str, message_id: str, approve: bool, now: int) -> PushOutcome | None:
    """Approve (the message enters the normal flow) or reject a waiting message.

    As the SQLite store's: the message as it is now and the devices to send it
    to now; None if the app has no such message; NotWaitingForVerify if it is
    not waiting.
    """
    conn = tx.conn
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    if message.revoked:
        raise NotWaitingForVerify(message_id, "revoked")
    if message.verification != VERIFY_PENDING or message.status != WAITING:
        raise NotWaitingForVerify(message_id, message.verification or "not_required")
    if not approve:
        conn.execute(
            "UPDATE messages SET verification = %s, modified_at = %s WHERE seq = %s",
            (VERIFY_REJECTED, now, message.seq),
        )
        rejected = replace(message, verification=VERIFY_REJECTED, modified_at=now)
        return PushOutcome(rejected, False, ())
    if message.expires_at <= now:
        raise NotWaitingForVerify(message_id, "expired")
    bound = (
        _bound_devices(conn, app_id, message.target_id)
        if message.delivery_type == "user" and message.push_type != "broadcast"
        else []
    )
    status, device_ids = first_targets(message, bound)
    insert_deliveries(conn, [(message.seq, app_id, d, now) for d in device_ids])
    conn.execute(
        "UPDATE messages SET status = %s, verification = %s, modified_at = %s WHERE seq = %s",
        (status, VERIFY_APPROVED, now, message.seq),
    )
    approved = replace(message, status=status, verification=VERIFY_APPROVED, modified_at=now)
    return PushOutcome(approved, False, tuple(device_ids))


def revoke(tx: Tx, *, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
    """Mark a message revoked and delete its undelivered (status 0) deliveries; the
    devices whose copy was stopped. Revoking again stops nothing more."""
    conn = tx.conn
    message = _message_with_state(conn, app_id, message_id)
    if message is None:
        return None
    if not message.revoked:
        # Not modified_at: revoking leaves the status as it was.
        conn.execute("UPDATE messages SET revoked = true WHERE seq = %s", (message.seq,))
        message = replace(message, revoked=True)
    stopped = conn.execute(
        "DELETE FROM deliveries WHERE message_seq = %s AND status = 0 RETURNING device_id",
        (message.seq,),
    ).fetchall()
    return message, sorted(str(r[0]) for r in stopped)

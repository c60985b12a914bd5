"""A device's side of the store: online and offline, its binding to a user.

Hellos and disconnects come in storms (a node restarts, a network blips), so
`devices_online` and `devices_offline` take every one queued for a group
commit at once: one upsert over arrays, one INSERT opening the broadcasts of
all of them. Rows are written in key order, the same on every node, so two
nodes' group commits touching the same devices queue rather than deadlock.
The backlog page after a hello is read once the hello is committed (pages.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import DeviceInfo
from .locks import lock_users
from .rows import WAITING, Row
from .tx import Connection, Tx


@dataclass(frozen=True, slots=True)
class Online:
    app_id: str
    device_id: str
    platform: str
    now: int


def devices_online(tx: Tx, items: list[Online]) -> list[None]:
    """Record devices online (a hello); open the broadcasts each has not had yet."""
    latest = {(i.app_id, i.device_id): i for i in items}  # a device twice: its last hello
    rows = [latest[k] for k in sorted(latest)]
    columns = (
        [r.app_id for r in rows],
        [r.device_id for r in rows],
        [r.platform for r in rows],
        [r.now for r in rows],
    )
    tx.conn.execute(
        "INSERT INTO devices (app_id, device_id, platform, last_seen, created_at)"
        " SELECT a, d, p, n, n FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])"
        " AS r(a, d, p, n)"
        " ON CONFLICT (app_id, device_id) DO UPDATE SET platform = excluded.platform,"
        " last_seen = excluded.last_seen",
        columns,
    )
    # A broadcast reaches a device once: its delivery row, opened lazily here
    # (ON CONFLICT keeps an acked one acked).
    tx.conn.execute(
        "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT m.seq, m.app_id, r.d, 0, r.n, r.n"
        " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS r(a, d, p, n)"
        " JOIN messages m ON m.app_id = r.a AND m.push_type = 'broadcast' AND m.expires_at > r.n"
        " AND NOT m.revoked AND m.status <> %s AND (m.platform IS NULL OR m.platform = r.p)"
        " ORDER BY m.seq, r.d ON CONFLICT DO NOTHING",
        (*columns, WAITING),
    )
    return [None] * len(items)


@dataclass(frozen=True, slots=True)
class Offline:
    app_id: str
    device_id: str
    now: int


def devices_offline(tx: Tx, items: list[Offline]) -> list[None]:
    latest = {(i.app_id, i.device_id): i.now for i in items}
    keys = sorted(latest)
    tx.conn.execute(
        "UPDATE devices SET last_seen = r.n"
        " FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS r(a, d, n)"
        " WHERE devices.app_id = r.a AND devices.device_id = r.d",
        ([k[0] for k in keys], [k[1] for k in keys], [latest[k] for k in keys]),
    )
    return [None] * len(items)


def _drop_user_deliveries(tx: Tx, app_id: str, device_id: str, user_id: str, now: int) -> None:
    """The device left `user_id`: its undelivered copies of that user's messages go;
    a message left with no device to go to is NoBindInfo again."""
    tx.conn.execute(
        "WITH dropped AS (DELETE FROM deliveries d USING messages m"
        " WHERE d.app_id = %s AND d.device_id = %s AND d.status = 0 AND m.seq = d.message_seq"
        " AND m.app_id = %s AND m.delivery_type = 'user' AND m.target_id = %s"
        " RETURNING d.message_seq)"
        " UPDATE messages SET status = 1, modified_at = %s"
        " WHERE seq IN (SELECT message_seq FROM dropped) AND status = 0"
        " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.message_seq = messages.seq"
        " AND o.device_id <> %s)",
        (app_id, device_id, app_id, user_id, now, device_id),
    )


def bind(tx: Tx, *, app_id: str, device_id: str, user_id: str, now: int) -> int | None:
    """Bind a device to a user, and give it a delivery of each of the user's waiting
    messages; the highest seq among those attached (None if none)."""
    conn = tx.conn
    row = conn.execute(
        "SELECT user_id FROM devices WHERE app_id = %s AND device_id = %s FOR UPDATE",
        (app_id, device_id),
    ).fetchone()
    if row is None:
        lock_users(conn, [(app_id, user_id)])
        conn.execute(
            "INSERT INTO devices (app_id, device_id, user_id, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (app_id, device_id) DO UPDATE SET user_id = excluded.user_id",
            (app_id, device_id, user_id, now),
        )
    else:
        old = row[0]
        lock_users(conn, [(app_id, user_id)] + ([(app_id, old)] if old is not None else []))
        if old is not None and old != user_id:
            _drop_user_deliveries(tx, app_id, device_id, str(old), now)
        conn.execute(
            "UPDATE devices SET user_id = %s WHERE app_id = %s AND device_id = %s",
            (user_id, app_id, device_id),
        )
    attached = conn.execute(
        "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT seq, app_id, %s, 0, %s, %s FROM messages"
        " WHERE app_id = %s AND delivery_type = 'user' AND target_id = %s"
        " AND status IN (0, 1) AND expires_at > %s AND NOT revoked"
        " ORDER BY seq ON CONFLICT DO NOTHING RETURNING message_seq",
        (device_id, now, now, app_id, user_id, now),
    ).fetchall()
    seqs = sorted(int(r[0]) for r in attached)
    if seqs:
        conn.execute(
            "UPDATE messages SET status = 0, modified_at = %s WHERE seq = ANY(%s) AND status = 1",
            (now, seqs),
        )
    return seqs[-1] if seqs else None


def unbind(tx: Tx, *, app_id: str, device_id: str, now: int) -> str | None:
    """Remove the device's binding; returns the user it was bound to."""
    row = tx.conn.execute(
        "SELECT user_id FROM devices WHERE app_id = %s AND device_id = %s FOR UPDATE",
        (app_id, device_id),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    old = str(row[0])
    lock_users(tx.conn, [(app_id, old)])
    _drop_user_deliveries(tx, app_id, device_id, old, now)
    tx.conn.execute(
        "UPDATE devices SET user_id = NULL WHERE app_id = %s AND device_id = %s",
        (app_id, device_id),
    )
    return old


def _info(row: Row) -> DeviceInfo:
    return DeviceInfo(row[0], row[1], row[2], None if row[3] is None else int(row[3]))


def get_device(conn: Connection, app_id: str, device_id: str) -> DeviceInfo | None:
    row = conn.execute(
        "SELECT device_id, platform, user_id, last_seen FROM devices"
        " WHERE app_id = %s AND device_id = %s",
        (app_id, device_id),
    ).fetchone()
    return None if row is None else _info(row)


def user_devices(conn: Connection, app_id: str, user_id: str) -> list[DeviceInfo]:
    rows = conn.execute(
        "SELECT device_id, platform, user_id, last_seen FROM devices"
        ' WHERE app_id = %s AND user_id = %s ORDER BY device_id COLLATE "C"',
        (app_id, user_id),
    ).fetchall()
    return [_info(r) for r in rows]


def claim_device(conn: Connection, app_id: str, device_id: str, node_id: str, now: int) -> int:
    """The device's next fencing epoch, now held by `node_id` (the device row is made if
    it has none). One autocommit statement, outside every group commit: it holds one
    row lock for an instant, so a storm of hellos of the same devices on many nodes
    (whose group commits would lock them in different orders) cannot deadlock."""
    row = conn.execute(
        "INSERT INTO devices (app_id, device_id, created_at, conn_epoch, conn_node)"
        " VALUES (%s, %s, %s, 1, %s) ON CONFLICT (app_id, device_id) DO UPDATE SET"
        " conn_epoch = devices.conn_epoch + 1, conn_node = excluded.conn_node"
        " RETURNING conn_epoch",
        (app_id, device_id, now, node_id),
    ).fetchone()
    assert row is not None
    return int(row[0])

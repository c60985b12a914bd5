"""The sweep of many nodes: unacked deliveries of the devices connected to one node.

Pub/sub hints between nodes may be lost (Redis pub/sub is at-most-once), so
each node re-reads, every few seconds and whenever its subscription comes
back, the deliveries of its own devices that are still status 0 and were
neither created nor sent in the last moments (a hint or a send may still be
on its way). One statement per chunk of devices, on the pending index.

The same sweep corrects what other lost hints left behind: the user each
session is bound to (`bound_users`, a bind or unbind hint lost) and the
broadcasts its devices never got a delivery of (`missing_broadcasts`, a
broadcast hint lost).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..records import Message
from .rows import M_COLS, MSG_COLS, WAITING, message_from_row
from .tx import Connection

_B_COLS = ", ".join("b." + c.strip() for c in MSG_COLS.split(","))


def unacked_deliveries(
    conn: Connection,
    devices: Sequence[tuple[str, str]],
    *,
    created_before: int,
    sent_before: int,
    now: int,
    limit: int,
) -> list[tuple[str, Message]]:
    """(device_id, message) of status-0 deliveries of these (app, device) pairs, created
    before `created_before` and never sent or sent before `sent_before`; at most `limit`,
    in message order. Expired, revoked and waiting messages are left out."""
    if not devices:
        return []
    apps = [a for a, _ in devices]
    ids = [d for _, d in devices]
    sql = (
        f"SELECT d.device_id, {M_COLS}"
        " FROM unnest(%s::text[], %s::text[]) AS k(app_id, device_id)"
        " JOIN deliveries d ON d.app_id = k.app_id AND d.device_id = k.device_id"
        " AND d.status = 0"
        " JOIN messages m ON m.seq = d.message_seq"
        " WHERE d.created_at < %s AND (d.sent_at IS NULL OR d.sent_at < %s)"
        " AND m.expires_at > %s AND NOT m.revoked AND m.status <> %s"
        " ORDER BY d.message_seq LIMIT %s"
    )
    rows = conn.execute(
        sql, [apps, ids, created_before, sent_before, now, WAITING, limit]
    ).fetchall()
    return [(str(r[0]), message_from_row(r, 1)) for r in rows]


def bound_users(
    conn: Connection, devices: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str | None]]:
    """(app_id, device_id, user_id) of these (app, device) pairs that have a row: a node
    corrects its sessions' users when a bind or unbind hint was lost."""
    if not devices:
        return []
    # LIMIT 1 in the lateral keeps it one primary-key probe per device: a plain join
    # hashes the whole devices table (the planner guesses 100 rows for the unnest).
    rows = conn.execute(
        "SELECT k.app_id, k.device_id, u.user_id"
        " FROM unnest(%s::text[], %s::text[]) AS k(app_id, device_id)"
        " CROSS JOIN LATERAL (SELECT dev.user_id FROM devices dev"
        " WHERE dev.app_id = k.app_id AND dev.device_id = k.device_id LIMIT 1) u",
        [[a for a, _ in devices], [d for _, d in devices]],
    ).fetchall()
    return [(str(r[0]), str(r[1]), None if r[2] is None else str(r[2])) for r in rows]


def missing_broadcasts(
    conn: Connection,
    online: Sequence[tuple[str, str, str]],
    *,
    created_from: int,
    created_before: int,
    now: int,
    limit: int,
) -> list[tuple[str, str, Message]]:
    """(device_id, platform, broadcast) of the open broadcasts created in
    [created_from, created_before) that these online (app, device, platform) triples
    have no delivery of: a node missed their hint. The window's broadcasts are found
    first (on the broadcasts index; usually none), then a delivery probe per device."""
    if not online:
        return []
    apps = sorted({a for a, _, _ in online})
    sql = (
        f"WITH b AS MATERIALIZED (SELECT {M_COLS}, m.platform AS only_platform FROM messages m"
        " WHERE m.app_id = ANY(%s) AND m.push_type = 'broadcast' AND m.expires_at > %s"
        " AND m.created_at >= %s AND m.created_at < %s AND NOT m.revoked AND m.status <> %s)"
        f" SELECT k.device_id, k.platform, {_B_COLS}"
        " FROM b JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(app_id, device_id, platform)"
        " ON k.app_id = b.app_id AND (b.only_platform IS NULL OR b.only_platform = k.platform)"
        " WHERE NOT EXISTS (SELECT 1 FROM deliveries d"
        " WHERE d.message_seq = b.seq AND d.device_id = k.device_id)"
        " ORDER BY b.seq, k.device_id LIMIT %s"
    )
    args = [apps, now, created_from, created_before, WAITING]
    args += [[a for a, _, _ in online], [d for _, d, _ in online], [p for _, _, p in online]]
    rows = conn.execute(sql, [*args, limit]).fetchall()
    return [(str(r[0]), str(r[1]), message_from_row(r, 2)) for r in rows]

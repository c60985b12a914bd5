"""The sweep of many nodes: unacked deliveries of the devices connected to one node.

Pub/sub hints between nodes may be lost (Redis pub/sub is at-most-once), so
each node re-reads, every few seconds and whenever its subscription comes
back, the deliveries of its own devices that are still status 0 and were
neither created nor sent in the last moments (a hint or a send may still be
on its way). One statement per chunk of devices, on the pending index.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..records import Message
from .rows import M_COLS, WAITING, message_from_row
from .tx import Connection


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

"""A device's backlog, page by page (the PostgreSQL side of gateway/backlog.py).

One statement reads, from one snapshot, the device's user, up to `limit`
messages after the cursor, and the snapshot's horizon (seqs.py). The page is
*settled* when every row in it is below the horizon: no transaction still
running can commit a seq below its last one, so the cursor may move past it.
The store reads an unsettled page again a moment later (store.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Message
from .rows import M_COLS, WAITING, message_from_row
from .seqs import HORIZON_SQL
from .tx import Connection


@dataclass(frozen=True, slots=True)
class Page:
    user_id: str | None  # the device's user when the page was read
    messages: list[Message]
    settled: bool


def pending_page(
    conn: Connection,
    app_id: str,
    device_id: str,
    *,
    after_seq: int,
    limit: int,
    now: int,
    user_id: str | None = None,
    upto_seq: int | None = None,
) -> Page:
    """Up to `limit` messages to send the device, after_seq < seq <= upto_seq, in order.

    Deliverable: the delivery is not acked, the message neither expired,
    revoked nor waiting for verification. With `user_id`, only that user's
    messages (the catch-up after a bind).
    """
    where = (
        "d.app_id = %s AND d.device_id = %s AND d.status = 0 AND d.message_seq > %s"
        " AND m.expires_at > %s AND NOT m.revoked AND m.status <> %s"
    )
    args: list[object] = [app_id, device_id, after_seq, now, WAITING]
    if upto_seq is not None:
        where += " AND d.message_seq <= %s"
        args.append(upto_seq)
    if user_id is not None:
        where += " AND m.delivery_type = 'user' AND m.target_id = %s"
        args.append(user_id)
    sql = (
        f"WITH h AS ({HORIZON_SQL})"
        f" SELECT dev.user_id, (SELECT * FROM h), p.* FROM (SELECT 1) one"
        " LEFT JOIN devices dev ON dev.app_id = %s AND dev.device_id = %s"
        f" LEFT JOIN LATERAL (SELECT {M_COLS} FROM deliveries d"
        f" JOIN messages m ON m.seq = d.message_seq WHERE {where}"
        " ORDER BY d.message_seq LIMIT %s) p ON true ORDER BY p.seq"
    )
    rows = conn.execute(sql, [app_id, device_id, *args, limit]).fetchall()
    user = rows[0][0]
    horizon = int(rows[0][1])
    messages = [message_from_row(r, 2) for r in rows if r[2] is not None]
    settled = not messages or messages[-1].seq < horizon
    return Page(user, messages, settled)

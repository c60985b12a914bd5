"""Queries of the vendor channels (tables in vendor_schema.py), for both stores.

Plain functions of a DB-API connection run on the store's writer thread (or a
PostgreSQL read connection). The SQL is written once with `?` placeholders and
kept to what SQLite and PostgreSQL both speak; `_sql` adapts the placeholders.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from . import vendor_folded
from .vendor_folded import ACKED, COMMON_CODES
from .vendor_records import (
    ChannelPolicy,
    FallbackClaim,
    FallbackOutcome,
    StoredChannel,
    VendorAnswer,
    VendorRegistration,
)
from .vendor_schema import DEFAULT_FALLBACK_SECONDS

WAITING_FOR_VERIFY = -1


def _sql(conn: Any, text: str) -> str:
    return text if isinstance(conn, sqlite3.Connection) else text.replace("?", "%s")


def _run(conn: Any, text: str, params: Sequence[Any] = ()) -> Any:
    return conn.execute(_sql(conn, text), tuple(params))


# --- credentials and policy ---------------------------------------------------------


def put_channel(conn: Any, *, app_id: str, vendor: str, blob: bytes, now: int) -> bool:
    """Store `app_id`'s encrypted credentials for `vendor`; True if there were none."""
    existed = _run(
        conn,
        "SELECT 1 FROM channel_credentials WHERE app_id = ? AND vendor = ?",
        (app_id, vendor),
    ).fetchone()
    _run(
        conn,
        "INSERT INTO channel_credentials (app_id, vendor, blob, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (app_id, vendor) DO UPDATE SET blob = excluded.blob,"
        " updated_at = excluded.updated_at",
        (app_id, vendor, blob, now),
    )
    return existed is None


def _stored(row: Sequence[Any]) -> StoredChannel:
    return StoredChannel(str(row[0]), str(row[1]), bytes(row[2]), int(row[3]))


def get_channel(conn: Any, *, app_id: str, vendor: str) -> StoredChannel | None:
    row = _run(
        conn,
        "SELECT app_id, vendor, blob, updated_at FROM channel_credentials"
        " WHERE app_id = ? AND vendor = ?",
        (app_id, vendor),
    ).fetchone()
    return None if row is None else _stored(row)


def list_channels(conn: Any, *, app_id: str) -> list[StoredChannel]:
    rows = _run(
        conn,
        "SELECT app_id, vendor, blob, updated_at FROM channel_credentials WHERE app_id = ?"
        " ORDER BY vendor",
        (app_id,),
    ).fetchall()
    return [_stored(r) for r in rows]


def delete_channel(conn: Any, *, app_id: str, vendor: str) -> bool:
    cursor = _run(
        conn, "DELETE FROM channel_credentials WHERE app_id = ? AND vendor = ?", (app_id, vendor)
    )
    return bool(cursor.rowcount)


def put_policy(conn: Any, *, app_id: str, fallback_after_seconds: int, now: int) -> None:
    _run(
        conn,
        "INSERT INTO channel_policies (app_id, fallback_after_seconds, updated_at)"
        " VALUES (?, ?, ?) ON CONFLICT (app_id) DO UPDATE SET"
        " fallback_after_seconds = excluded.fallback_after_seconds,"
        " updated_at = excluded.updated_at",
        (app_id, fallback_after_seconds, now),
    )


def get_policy(conn: Any, *, app_id: str) -> ChannelPolicy:
    row = _run(
        conn, "SELECT fallback_after_seconds FROM channel_policies WHERE app_id = ?", (app_id,)
    ).fetchone()
    return ChannelPolicy(DEFAULT_FALLBACK_SECONDS if row is None else int(row[0]))


# --- registrations ------------------------------------------------------------------

# A registration made after deliveries were stored schedules those still pending.
_SCHEDULE_PENDING = (
    "INSERT INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)"
    " SELECT d.message_seq, d.device_id, d.app_id, d.created_at + 1000 * coalesce("
    "(SELECT p.fallback_after_seconds FROM channel_policies p WHERE p.app_id = d.app_id), ?)"
    " FROM deliveries d WHERE d.app_id = ? AND d.device_id = ? AND d.status = 0"
    " AND EXISTS (SELECT 1 FROM channel_credentials c WHERE c.app_id = d.app_id"
    " AND c.vendor = ?)"
    " ON CONFLICT DO NOTHING"
)


def set_registration(
    conn: Any, *, app_id: str, device_id: str, vendor: str, token: str, now: int
) -> None:
    _run(
        conn,
        "INSERT INTO vendor_registrations (app_id, device_id, vendor, token, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, device_id) DO UPDATE SET"
        " vendor = excluded.vendor, token = excluded.token, updated_at = excluded.updated_at",
        (app_id, device_id, vendor, token, now),
    )
    _run(conn, _SCHEDULE_PENDING, (DEFAULT_FALLBACK_SECONDS, app_id, device_id, vendor))
    if isinstance(conn, sqlite3.Connection):
        conn.execute(
            vendor_folded.SCHEDULE_PENDING, (DEFAULT_FALLBACK_SECONDS, app_id, device_id, vendor)
        )


def delete_registration(conn: Any, *, app_id: str, device_id: str) -> bool:
    cursor = _run(
        conn,
        "DELETE FROM vendor_registrations WHERE app_id = ? AND device_id = ?",
        (app_id, device_id),
    )
    return bool(cursor.rowcount)


def get_registration(conn: Any, *, app_id: str, device_id: str) -> VendorRegistration | None:
    row = _run(
        conn,
        "SELECT vendor, token, updated_at FROM vendor_registrations"
        " WHERE app_id = ? AND device_id = ?",
        (app_id, device_id),
    ).fetchone()
    return None if row is None else VendorRegistration(str(row[0]), str(row[1]), int(row[2]))


# --- the fallback schedule ----------------------------------------------------------

_CLAIM_SQLITE = (
    "UPDATE vendor_fallbacks SET due_at = ?, lease_owner = ?, attempts = attempts + 1"
    " WHERE (message_seq, device_id) IN (SELECT message_seq, device_id FROM vendor_fallbacks"
    " WHERE due_at <= ? ORDER BY due_at LIMIT ?)"
)
# Several nodes: a row another node's transaction holds is skipped, not waited for.
_CLAIM_PG = (
    "UPDATE vendor_fallbacks SET due_at = ?, lease_owner = ?, attempts = attempts + 1"
    " WHERE (message_seq, device_id) IN (SELECT message_seq, device_id FROM vendor_fallbacks"
    " WHERE due_at <= ? ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED)"
)
_CLAIMED = (
    "SELECT f.message_seq, f.device_id, f.app_id, f.attempts, m.message_id, m.msg_key,"
    " m.title, m.content, m.ext, m.expires_at, m.revoked, m.status, d.status, r.vendor,"
    " r.token, c.updated_at"
    " FROM vendor_fallbacks f JOIN messages m ON m.seq = f.message_seq"
    " LEFT JOIN deliveries d ON d.message_seq = f.message_seq AND d.device_id = f.device_id"
    " LEFT JOIN vendor_registrations r ON r.app_id = f.app_id AND r.device_id = f.device_id"
    " LEFT JOIN channel_credentials c ON c.app_id = r.app_id AND c.vendor = r.vendor"
    " WHERE f.lease_owner = ?"
)


def claim_fallbacks(
    conn: Any, *, now: int, owner: str, lease_ms: int, limit: int
) -> list[FallbackClaim]:
    """Up to `limit` due deliveries, leased to `owner` until now + lease_ms.

    Rows that must not go out (acked, revoked, unapproved, expired, the
    registration or the channel gone, the message purged) are dropped here.
    """
    on_sqlite = isinstance(conn, sqlite3.Connection)
    _run(conn, _CLAIM_SQLITE if on_sqlite else _CLAIM_PG, (now + lease_ms, owner, now, limit))
    claims: list[FallbackClaim] = []
    dropped: list[tuple[int, str]] = []
    claimed = vendor_folded.CLAIMED if on_sqlite else _CLAIMED
    for row in _run(conn, claimed, (owner,)).fetchall():
        seq, device_id = int(row[0]), str(row[1])
        expires_at, revoked, message_status, delivery_status = row[9], row[10], row[11], row[12]
        vendor, token, version = row[13], row[14], row[15]
        if (
            delivery_status is None
            or int(delivery_status) != 0
            or bool(revoked)
            or int(message_status) == WAITING_FOR_VERIFY
            or int(expires_at) <= now
            or vendor is None
            or version is None
        ):
            dropped.append((seq, device_id))
            continue
        claims.append(
            FallbackClaim(
                owner=owner,
                message_seq=seq,
                device_id=device_id,
                app_id=str(row[2]),
                attempts=int(row[3]),
                message_id=str(row[4]),
                msg_key=str(row[5]),
                title=str(row[6]),
                content=str(row[7]),
                ext=json.loads(row[8]) if row[8] else {},
                expires_at=int(expires_at),
                vendor=str(vendor),
                token=str(token),
                channel_version=int(version),
            )
        )
    for seq, device_id in dropped:
        _run(
            conn,
            "DELETE FROM vendor_fallbacks WHERE message_seq = ? AND device_id = ?",
            (seq, device_id),
        )
    # A row whose message is gone (no JOIN row) was purged with it by the trigger.
    return claims


_ADD_ACKED = (
    "INSERT INTO daily_counts (app_id, day, pushes, ackable, acked) VALUES (?, ?, 0, 0, 1)"
    " ON CONFLICT (app_id, day) DO UPDATE SET acked = daily_counts.acked + 1"
)
DAY_MS = 86_400_000


def _finish_delivery(conn: Any, o: FallbackOutcome, now: int) -> bool:
    """Record one answer on a `deliveries` row and its message; whether it was pending."""
    c = o.claim
    key = (c.message_seq, c.device_id)
    if o.code == ACKED:
        changed = _run(
            conn,
            "UPDATE deliveries SET status = 2, channel = ?, code = 2, acked_at = ?,"
            " sent_at = coalesce(sent_at, ?), modified_at = ?"
            " WHERE message_seq = ? AND device_id = ? AND status = 0",
            (c.vendor, now, now, now, *key),
        ).rowcount
        if changed:
            acked = _run(
                conn,
                "UPDATE messages SET status = 2, modified_at = ? WHERE seq = ? AND status <> 2"
                " RETURNING created_at, push_type",
                (now, c.message_seq),
            ).fetchall()
            _count_acked(conn, c.app_id, [(int(r[0]), str(r[1])) for r in acked])
        return bool(changed)
    changed = _run(
        conn,
        "UPDATE deliveries SET channel = ?, code = ?, modified_at = ?"
        " WHERE message_seq = ? AND device_id = ? AND status = 0",
        (c.vendor, o.code, now, *key),
    ).rowcount
    # A code that is also a common status (OPPO's -1 is WaitingForVerify's
    # number) stays on the delivery only: the message status would lie.
    if changed and o.code not in COMMON_CODES:
        _run(
            conn,
            "UPDATE messages SET status = ?, modified_at = ?"
            " WHERE seq = ? AND status <> 2 AND status <> -1 AND status <> ?",
            (o.code, now, c.message_seq, o.code),
        )
    return bool(changed)


def _count_acked(conn: Any, app_id: str, acked: Sequence[tuple[int, str]]) -> None:
    for created_at, push_type in acked:
        if push_type != "broadcast":
            _run(conn, _ADD_ACKED, (app_id, created_at // DAY_MS))


def finish_fallbacks(conn: Any, *, outcomes: Sequence[FallbackOutcome], now: int) -> int:
    """Record each vendor answer on its delivery and message; returns how many were recorded.

    Accepted: the delivery is 2 with the vendor as its channel, and so is the
    message. Refused: the delivery keeps the vendor's code (still pending, so the
    self-built channel may deliver it) and the message shows it unless it is 2.
    A dead token removes the registration it was sent to. The schedule row is
    deleted, or moved to `retry_at` for a transient answer. On SQLite a
    delivery folded into its message's row is tried first (vendor_folded.py).
    """
    recorded = 0
    on_sqlite = isinstance(conn, sqlite3.Connection)
    for o in outcomes:
        c = o.claim
        key = (c.message_seq, c.device_id)
        changed = False
        if on_sqlite:
            changed, acked = vendor_folded.finish(conn, o, now)
            _count_acked(conn, c.app_id, acked)
        changed = changed or _finish_delivery(conn, o, now)
        recorded += bool(changed)
        if changed:
            _run(
                conn,
                "INSERT INTO vendor_answers (message_seq, device_id, app_id, vendor, code, raw,"
                " answered_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_seq, device_id)"
                " DO UPDATE SET vendor = excluded.vendor, code = excluded.code,"
                " raw = excluded.raw, answered_at = excluded.answered_at",
                (*key, c.app_id, c.vendor, o.code, o.raw, now),
            )
        if o.dead_token:
            _run(
                conn,
                "DELETE FROM vendor_registrations WHERE app_id = ? AND device_id = ? AND token = ?",
                (c.app_id, c.device_id, c.token),
            )
        if o.retry_at is not None and changed:
            _run(
                conn,
                "UPDATE vendor_fallbacks SET due_at = ?, lease_owner = NULL"
                " WHERE message_seq = ? AND device_id = ? AND lease_owner = ?",
                (o.retry_at, *key, c.owner),
            )
        else:
            _run(
                conn,
                "DELETE FROM vendor_fallbacks WHERE message_seq = ? AND device_id = ?"
                " AND lease_owner = ?",
                (*key, c.owner),
            )
    return recorded


def vendor_answers(conn: Any, *, app_id: str, message_seq: int) -> list[VendorAnswer]:
    rows = _run(
        conn,
        "SELECT device_id, vendor, code, raw, answered_at FROM vendor_answers"
        " WHERE message_seq = ? AND app_id = ? ORDER BY device_id",
        (message_seq, app_id),
    ).fetchall()
    return [VendorAnswer(str(r[0]), str(r[1]), int(r[2]), str(r[3]), int(r[4])) for r in rows]


def pending_fallbacks(conn: Any) -> int:
    """Rows in the schedule (for /metrics)."""
    return int(_run(conn, "SELECT count(*) FROM vendor_fallbacks").fetchone()[0])

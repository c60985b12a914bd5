"""The fallback schedule's queries for the SQLite store's folded deliveries.

On SQLite a message to one device carries its delivery in its own row
(`messages.d_state` NULL/0/2, `d_channel`, `d_code`, `d_*_at`; the device is
`target_id`; schema.py `_folded_deliveries`); `deliveries` keeps the rows of
user and broadcast messages. PostgreSQL keeps one `deliveries` row per
delivery, so vendor.py calls these only with a sqlite3 connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from . import queries
from .records import App, NewMessage, PushOutcome
from .vendor_records import FallbackOutcome
from .vendor_schema import DEFAULT_FALLBACK_SECONDS

ACKED = 2
# Codes that are also common statuses (OPPO's -1 is WaitingForVerify's number)
# stay on the delivery only: the message status would lie.
COMMON_CODES = frozenset({-1, 0, 1, 2})

# The pending folded deliveries of messages just stored whose device has a
# registration with a vendor the app has credentials for. One call's messages
# are the seqs from its first to its last (one writer; seq only grows).
_SCHEDULE_STORED = (
    "INSERT INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)"
    " SELECT m.seq, m.target_id, m.app_id, m.created_at + 1000 *"
    " coalesce((SELECT p.fallback_after_seconds FROM channel_policies p"
    " WHERE p.app_id = m.app_id), ?1)"
    " FROM messages m WHERE m.seq BETWEEN ?2 AND ?3 AND m.d_state = 0"
    " AND EXISTS (SELECT 1 FROM vendor_registrations r JOIN channel_credentials c"
    " ON c.app_id = r.app_id AND c.vendor = r.vendor"
    " WHERE r.app_id = m.app_id AND r.device_id = m.target_id)"
    " ON CONFLICT DO NOTHING"
)


def _has_channel(conn: sqlite3.Connection, app_id: str) -> bool:
    """Whether the app has credentials for any vendor (the primary key's prefix)."""
    found = conn.execute("SELECT 1 FROM channel_credentials WHERE app_id = ? LIMIT 1", (app_id,))
    return found.fetchone() is not None


def insert_messages(
    conn: sqlite3.Connection, app: App, items: Sequence[NewMessage], now: int, kept_since: int
) -> list[PushOutcome]:
    """queries.insert_messages, then the fallback schedule of what it stored, in one go.

    Not a trigger on `messages`: any INSERT trigger on that table costs the
    insert about 10 µs of CPU per row whatever its WHEN clause (measured on
    SQLite 3.40 with the table's partial indexes; docs/vendor-channels.md,
    "The fallback schedule on SQLite"), on every push of every app. Here an
    app without credentials (the common case) costs one probe of the small
    credentials table per call.
    """
    outcomes = queries.insert_messages(conn, app, items, now, kept_since)
    stored = [o.message.seq for o in outcomes if not o.duplicate and queries.folds(o.message)]
    if stored and _has_channel(conn, app.app_id):
        conn.execute(_SCHEDULE_STORED, (DEFAULT_FALLBACK_SECONDS, min(stored), max(stored)))
    return outcomes


# A registration made after pushes were stored schedules the device's pending
# messages, found through the partial index `messages_pending`.
SCHEDULE_PENDING = (
    "INSERT INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)"
    " SELECT m.seq, m.target_id, m.app_id, coalesce(m.d_created_at, m.created_at) + 1000 *"
    " coalesce((SELECT p.fallback_after_seconds FROM channel_policies p"
    " WHERE p.app_id = m.app_id), ?1)"
    " FROM messages m WHERE m.app_id = ?2 AND m.target_id = ?3 AND m.d_state = 0"
    " AND EXISTS (SELECT 1 FROM channel_credentials c WHERE c.app_id = ?2 AND c.vendor = ?4)"
    " ON CONFLICT DO NOTHING"
)

# The claimed rows with what a send needs; a delivery's state is its
# `deliveries` row's, or the message row's own for a folded one.
CLAIMED = (
    "SELECT f.message_seq, f.device_id, f.app_id, f.attempts, m.message_id, m.msg_key,"
    " m.title, m.content, m.ext, m.expires_at, m.revoked, m.status,"
    " coalesce(d.status, CASE WHEN m.target_id = f.device_id THEN m.d_state END), r.vendor,"
    " r.token, c.updated_at"
    " FROM vendor_fallbacks f JOIN messages m ON m.seq = f.message_seq"
    " LEFT JOIN deliveries d ON d.message_seq = f.message_seq AND d.device_id = f.device_id"
    " LEFT JOIN vendor_registrations r ON r.app_id = f.app_id AND r.device_id = f.device_id"
    " LEFT JOIN channel_credentials c ON c.app_id = r.app_id AND c.vendor = r.vendor"
    " WHERE f.lease_owner = ?"
)

# The vendor accepted: the delivery is acked through the vendor, and so is the
# message (it has this one delivery). Returns the row for the daily counts.
_ACCEPTED = (
    "UPDATE messages SET d_state = 2, d_channel = ?1, d_code = 2, d_acked_at = ?2,"
    " d_sent_at = coalesce(d_sent_at, ?2), status = 2, modified_at = ?2"
    " WHERE seq = ?3 AND target_id = ?4 AND d_state = 0"
    " RETURNING created_at, push_type"
)
# The vendor refused: the delivery keeps the vendor and its code (still
# pending, so the self-built channel may deliver it); the message shows the code.
_REFUSED = (
    "UPDATE messages SET d_channel = ?1, d_code = ?2, modified_at = ?3,"
    " status = CASE WHEN ?4 AND status NOT IN (2, -1) THEN ?2 ELSE status END"
    " WHERE seq = ?5 AND target_id = ?6 AND d_state = 0"
)


def finish(
    conn: sqlite3.Connection, outcome: FallbackOutcome, now: int
) -> tuple[bool, list[tuple[int, str]]]:
    """Record one answer on a folded delivery: whether there was one pending, and the
    (created_at, push_type) of the message it acked (for the daily counts)."""
    c = outcome.claim
    if outcome.code == ACKED:
        rows = conn.execute(_ACCEPTED, (c.vendor, now, c.message_seq, c.device_id)).fetchall()
        return bool(rows), [(int(r[0]), str(r[1])) for r in rows]
    shows = outcome.code not in COMMON_CODES
    cursor = conn.execute(
        _REFUSED, (c.vendor, outcome.code, now, shows, c.message_seq, c.device_id)
    )
    return bool(cursor.rowcount), []

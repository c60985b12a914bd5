"""Tables of the vendor channels (CONTRACT §6), for SQLite and PostgreSQL.

- `channel_credentials`: an app's credentials for one vendor, encrypted (a
  Fernet blob, gateway/channels/keyring.py); `updated_at` versions them, so
  every node notices a change at its next send.
- `channel_policies`: an app's `fallback_after_seconds` (no row: 10).
- `vendor_registrations`: a device's vendor and the token that vendor issued.
- `vendor_fallbacks`: the fallback schedule, one row per delivery that may go
  through a vendor, with its due time. A sender claims due rows by moving
  `due_at` one lease ahead and writing its claim id in `lease_owner`: a node
  that dies after claiming leaves rows that fall due again when the lease
  ends, and two nodes never claim the same row at once.
- `vendor_answers`: the last answer of the vendor for a delivery (code and raw
  text), shown in the push details.

A trigger on `deliveries` schedules each new pending delivery of a device that
has a registration with a configured vendor, in the transaction that stores
it, so the store's own insert queries know nothing of vendors. Another on
`messages` drops a purged message's rows. On SQLite a message to one device
carries its delivery in its own row (`d_state`, schema.py `_folded_deliveries`):
those are scheduled by the SQLite store's insert (vendor_folded.py, not a
trigger: an INSERT trigger on `messages` taxes every push), and by a trigger
when a verified message is approved (`UPDATE OF verification`, which only
verify() runs, so acks and sent marks never pay for it).
"""

from __future__ import annotations

import sqlite_utils

DEFAULT_FALLBACK_SECONDS = 10

_TABLES = """
CREATE TABLE IF NOT EXISTS channel_credentials (
    app_id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    blob {blob} NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, vendor)
);
CREATE TABLE IF NOT EXISTS channel_policies (
    app_id TEXT PRIMARY KEY,
    fallback_after_seconds INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS vendor_registrations (
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    token TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, device_id)
);
CREATE TABLE IF NOT EXISTS vendor_fallbacks (
    message_seq BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    lease_owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_seq, device_id)
);
CREATE INDEX IF NOT EXISTS vendor_fallbacks_due ON vendor_fallbacks (due_at);
CREATE INDEX IF NOT EXISTS vendor_fallbacks_owner ON vendor_fallbacks (lease_owner);
CREATE TABLE IF NOT EXISTS vendor_answers (
    message_seq BIGINT NOT NULL,
    device_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    vendor TEXT NOT NULL,
    code INTEGER NOT NULL,
    raw TEXT NOT NULL,
    answered_at BIGINT NOT NULL,
    PRIMARY KEY (message_seq, device_id)
);
"""


def _due(created_at: str) -> str:
    """The due time of a new delivery: its creation plus the app's policy."""
    return (
        f"{created_at} + 1000 * coalesce((SELECT p.fallback_after_seconds"
        f" FROM channel_policies p WHERE p.app_id = NEW.app_id), {DEFAULT_FALLBACK_SECONDS})"
    )


def _routable(device_id: str) -> str:
    """The device has a registration with a vendor its app has credentials for."""
    return (
        "EXISTS (SELECT 1 FROM vendor_registrations r JOIN channel_credentials c"
        " ON c.app_id = r.app_id AND c.vendor = r.vendor"
        f" WHERE r.app_id = NEW.app_id AND r.device_id = {device_id})"
    )


_DUE = _due("NEW.created_at")
_ROUTABLE = _routable("NEW.device_id")
# An app without credentials (the common case) is told by one probe of the
# small credentials table, before the registration (a table as big as the
# devices) is looked up.
_FOLDED_ROUTABLE = (
    "NEW.d_state = 0 AND EXISTS (SELECT 1 FROM channel_credentials k WHERE k.app_id = NEW.app_id)"
    f" AND {_routable('NEW.target_id')}"
)
_FOLDED_SCHEDULE = (
    " INSERT OR IGNORE INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)"
    " VALUES (NEW.seq, NEW.target_id, NEW.app_id,"
    f" {_due('coalesce(NEW.d_created_at, NEW.created_at)')}); END"
)


def folded_schedule_trigger(name: str, event: str, when: str = "") -> str:
    """A trigger on `messages` that schedules a folded row turned pending and routable."""
    return (
        f"CREATE TRIGGER IF NOT EXISTS {name} {event} ON messages"
        f" WHEN {when}{_FOLDED_ROUTABLE} BEGIN{_FOLDED_SCHEDULE}"
    )


_SQLITE_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS vendor_fallback_schedule AFTER INSERT ON deliveries"
    f" WHEN NEW.status = 0 AND {_ROUTABLE} BEGIN"
    " INSERT OR IGNORE INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)"
    f" VALUES (NEW.message_seq, NEW.device_id, NEW.app_id, {_DUE}); END",
    # verify() approves a folded message by setting d_state 0 with its verification.
    folded_schedule_trigger(
        "vendor_fallback_schedule_approved",
        "AFTER UPDATE OF verification",
        "OLD.d_state IS NULL AND ",
    ),
    "CREATE TRIGGER IF NOT EXISTS vendor_fallback_purge AFTER DELETE ON messages BEGIN"
    " DELETE FROM vendor_fallbacks WHERE message_seq = OLD.seq;"
    " DELETE FROM vendor_answers WHERE message_seq = OLD.seq; END",
)

_PG_TRIGGERS = f"""
CREATE OR REPLACE FUNCTION vendor_fallback_schedule() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 0 AND {_ROUTABLE} THEN
        INSERT INTO vendor_fallbacks (message_seq, device_id, app_id, due_at)
        VALUES (NEW.message_seq, NEW.device_id, NEW.app_id, {_DUE})
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER vendor_fallback_schedule AFTER INSERT ON deliveries
    FOR EACH ROW EXECUTE FUNCTION vendor_fallback_schedule();
CREATE OR REPLACE FUNCTION vendor_fallback_purge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM vendor_fallbacks WHERE message_seq = OLD.seq;
    DELETE FROM vendor_answers WHERE message_seq = OLD.seq;
    RETURN NULL;
END $$;
CREATE TRIGGER vendor_fallback_purge AFTER DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION vendor_fallback_purge();
"""

# One migration script of the PostgreSQL store (gateway/store/postgres/schema.py).
PG_VENDOR_CHANNELS = _TABLES.format(blob="bytea") + _PG_TRIGGERS


def sqlite_vendor_channels(db: sqlite_utils.Database) -> None:
    """The vendor channels' tables and triggers (idempotent, like every migration here).

    Statement by statement: `executescript` would commit the migration's transaction."""
    tables = [s.strip() for s in _TABLES.format(blob="BLOB").split(";") if s.strip()]
    for statement in (*tables, *_SQLITE_TRIGGERS):
        db.conn.execute(statement)

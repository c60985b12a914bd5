"""The PostgreSQL schema and its migrations.

The schema mirrors the SQLite store's (gateway/store/schema.py) table for
table, so both answer the Store interface identically; what differs is what
PostgreSQL does better: partial indexes sized to the hot queries, `seq`
assigned by the writer (seqs.py) instead of a sequence.

`pushgate_schema` holds the version. Migrations run at start under an
advisory lock, so nodes starting together migrate once; a database whose
version is newer than this code is refused with a clear error rather than
written by code that does not know its tables.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..vendor_schema import PG_VENDOR_CHANNELS

# Taken by the migrating transaction: one migration at a time per database.
_MIGRATION_LOCK = 0x70757368  # "push"

_V1 = """
CREATE TABLE apps (
    app_id text PRIMARY KEY,
    name text NOT NULL,
    api_key_hash text NOT NULL UNIQUE,
    secret text NOT NULL,
    verify boolean NOT NULL,
    created_at bigint NOT NULL
);
CREATE TABLE devices (
    app_id text NOT NULL,
    device_id text NOT NULL,
    platform text,
    user_id text,
    last_seen bigint,
    created_at bigint NOT NULL,
    -- The fencing epoch of the device's live connection and the node holding it
    -- (many nodes: a route in the broker is only as new as its epoch).
    conn_epoch bigint NOT NULL DEFAULT 0,
    conn_node text,
    PRIMARY KEY (app_id, device_id)
);
CREATE INDEX devices_user ON devices (app_id, user_id) WHERE user_id IS NOT NULL;
-- seq orders messages (seqs.py); message_id is the public, opaque ID.
CREATE TABLE messages (
    seq bigint PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    app_id text NOT NULL,
    msg_key text NOT NULL,
    push_type text NOT NULL,
    delivery_type text NOT NULL,
    target_id text NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    ext text NOT NULL,
    template text,
    platform text,
    content_hash text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    modified_at bigint NOT NULL,
    status integer NOT NULL,
    revoked boolean NOT NULL DEFAULT false,
    verification text
) WITH (fillfactor = 90);
CREATE UNIQUE INDEX messages_key ON messages (app_id, target_id, msg_key);
-- The message list pages over seq per app (listed types only).
CREATE INDEX messages_list ON messages (app_id, seq) WHERE push_type IN ('simple', 'template');
-- Retention purges by age.
CREATE INDEX messages_created ON messages (created_at);
-- Broadcasts still open, opened for each device as it comes online.
CREATE INDEX messages_broadcasts ON messages (app_id, expires_at) WHERE push_type = 'broadcast';
-- A bind attaches the user's waiting messages (status is checked on the rows:
-- no index names it, so an ack's status change is a HOT update, in place).
CREATE INDEX messages_user ON messages (app_id, target_id) WHERE delivery_type = 'user';
-- A delivery carries its channel and code (vendor channels) and the time of
-- each state change (receipts, telemetry).
CREATE TABLE deliveries (
    message_seq bigint NOT NULL,
    app_id text NOT NULL,
    device_id text NOT NULL,
    status integer NOT NULL,
    channel text NOT NULL DEFAULT 'self',
    code integer,
    created_at bigint NOT NULL,
    sent_at bigint,
    acked_at bigint,
    modified_at bigint NOT NULL,
    PRIMARY KEY (message_seq, device_id)
) WITH (fillfactor = 90);
-- A device's backlog: only what is still to deliver is indexed.
CREATE INDEX deliveries_pending ON deliveries (app_id, device_id, message_seq) WHERE status = 0;
CREATE TABLE templates (
    app_id text NOT NULL,
    name text NOT NULL,
    title text NOT NULL,
    content text NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (app_id, name)
);
-- Per app and UTC day of creation (the console's numbers, never a scan).
CREATE TABLE daily_counts (
    app_id text NOT NULL,
    day integer NOT NULL,
    pushes bigint NOT NULL,
    ackable bigint NOT NULL,
    acked bigint NOT NULL,
    PRIMARY KEY (app_id, day)
);
"""

MIGRATIONS: list[str] = [_V1]
MIGRATIONS.append(PG_VENDOR_CHANNELS)


class SchemaTooNew(Exception):
    """The database was migrated by a newer pushgate: this one must not write to it."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"the PostgreSQL schema is version {found}, newer than this pushgate knows"
            f" ({known}): run a pushgate at least as new as the one that migrated it"
        )
        self.found = found
        self.known = known


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    """Bring the schema to the newest version, in one transaction; returns that version.

    `conn` is in autocommit mode; the search_path of its URL chooses the schema.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pushgate_schema"
            " (one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL)"
        )
        row = conn.execute("SELECT version FROM pushgate_schema").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise SchemaTooNew(version, len(MIGRATIONS))
        for number, script in enumerate(MIGRATIONS, start=1):
            if version < number:
                conn.execute(script.encode())
                version = number
        conn.execute(
            "INSERT INTO pushgate_schema (version) VALUES (%s)"
            " ON CONFLICT (one) DO UPDATE SET version = excluded.version",
            (version,),
        )
    return version

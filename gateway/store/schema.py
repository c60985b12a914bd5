"""Schema and migrations, applied at start. `PRAGMA user_version` is the schema version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils

from .stats import CountingConnection
from .vendor_schema import sqlite_vendor_channels


def _v1(db: sqlite_utils.Database) -> None:
    db.table("apps").create(
        {
            "app_id": str,
            "name": str,
            "api_key_hash": str,
            "secret": str,
            "verify": int,
            "created_at": int,
        },
        pk="app_id",
        not_null={"name", "api_key_hash", "secret", "verify", "created_at"},
    )
    db.table("apps").create_index(["api_key_hash"], unique=True)
    db.table("devices").create(
        {
            "app_id": str,
            "device_id": str,
            "platform": str,
            "user_id": str,
            "last_seen": int,
            "created_at": int,
        },
        pk=("app_id", "device_id"),
        not_null={"created_at"},
    )
    db.table("devices").create_index(["app_id", "user_id"])
    # seq orders messages by creation; message_id is the public, opaque ID.
    db.execute(
        """
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            app_id TEXT NOT NULL,
            msg_key TEXT NOT NULL,
            push_type TEXT NOT NULL,
            delivery_type TEXT NOT NULL,
            target_id TEXT NOT NULL,
            title TEXT NOT NULL,
            content TEXT NOT NULL,
            ext TEXT NOT NULL,
            template TEXT,
            platform TEXT,
            content_hash TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            modified_at INTEGER NOT NULL,
            status INTEGER NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.table("messages").create_index(["app_id", "target_id", "msg_key"], unique=True)
    db.table("messages").create_index(["app_id", "created_at"])
    db.table("messages").create_index(["app_id", "delivery_type", "target_id", "status"])
    # A delivery row carries its channel and a code so vendor channels can
    # report into the same model later; timestamps of each state change are
    # kept for receipts and telemetry.
    db.execute(
        """
        CREATE TABLE deliveries (
            message_seq INTEGER NOT NULL,
            app_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            status INTEGER NOT NULL,
            channel TEXT NOT NULL DEFAULT 'self',
            code INTEGER,
            created_at INTEGER NOT NULL,
            sent_at INTEGER,
            acked_at INTEGER,
            modified_at INTEGER NOT NULL,
            PRIMARY KEY (message_seq, device_id)
        ) WITHOUT ROWID
        """
    )
    db.table("deliveries").create_index(["app_id", "device_id", "status", "message_seq"])
    db.table("templates").create(
        {"app_id": str, "name": str, "title": str, "content": str, "updated_at": int},
        pk=("app_id", "name"),
    )


def _listing_indexes(db: sqlite_utils.Database) -> None:
    """The message list pages over seq per app (listed types only); retention purges by age."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS messages_list ON messages (app_id, seq)"
        " WHERE push_type IN ('simple', 'template')"
    )
    db.execute("CREATE INDEX IF NOT EXISTS messages_created_at ON messages (created_at)")


def _push_types_and_moderation(db: sqlite_utils.Database) -> None:
    """Verification state per message, pending broadcasts per app, templates.

    Self-contained and idempotent, so it holds whatever order migrations land in.
    """
    if "verification" not in db.table("messages").columns_dict:
        # NULL: the app does not verify; else pending, approved or rejected.
        db.execute("ALTER TABLE messages ADD COLUMN verification TEXT")
    db.execute(
        "CREATE INDEX IF NOT EXISTS messages_broadcasts ON messages (app_id, expires_at)"
        " WHERE push_type = 'broadcast'"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS templates (app_id TEXT, name TEXT, title TEXT,"
        " content TEXT, updated_at INTEGER, PRIMARY KEY (app_id, name))"
    )


def _daily_counts(db: sqlite_utils.Database) -> None:
    """Per app and UTC day of creation: messages, ackable ones (not broadcasts), acked ones.

    Kept up to date by every insert and ack (stats.py), so the console's
    numbers never scan messages. Idempotent: it recounts what is stored.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS daily_counts (app_id TEXT NOT NULL, day INTEGER NOT NULL,"
        " pushes INTEGER NOT NULL, ackable INTEGER NOT NULL, acked INTEGER NOT NULL,"
        " PRIMARY KEY (app_id, day)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT OR REPLACE INTO daily_counts (app_id, day, pushes, ackable, acked)"
        " SELECT app_id, created_at / 86400000, count(*), sum(push_type <> 'broadcast'),"
        " sum(push_type <> 'broadcast' AND status = 2) FROM messages"
        " GROUP BY app_id, created_at / 86400000"
    )


def _folded_deliveries(db: sqlite_utils.Database) -> None:
    """A message to one device carries its delivery in its own row (docs/data-model.md).

    The `d_*` columns of `messages` hold the delivery of a message pushed to
    one device (push type not broadcast, delivery type a platform): d_state
    NULL (no delivery: waiting for verification, or stopped by a revoke), 0
    (pending) or 2 (acked); the device is `target_id`; d_created_at NULL
    means the message's created_at; the delivery's modified_at is the
    message's. `deliveries` keeps the rows of user and broadcast messages.
    Existing single-device deliveries move into their message's row; indexes
    no query uses go, and the per-device backlog indexes hold pending rows only.
    """
    columns = db.table("messages").columns_dict
    for name, kind in (
        ("d_state", "INTEGER"),
        ("d_channel", "TEXT"),
        ("d_code", "INTEGER"),
        ("d_created_at", "INTEGER"),
        ("d_sent_at", "INTEGER"),
        ("d_acked_at", "INTEGER"),
    ):
        if name not in columns:
            db.execute(f"ALTER TABLE messages ADD COLUMN {name} {kind}")
    db.execute(
        "UPDATE messages SET d_state = d.status, d_channel = d.channel, d_code = d.code,"
        " d_created_at = nullif(d.created_at, messages.created_at), d_sent_at = d.sent_at,"
        " d_acked_at = d.acked_at FROM deliveries d"
        " WHERE d.message_seq = messages.seq AND d.device_id = messages.target_id"
        " AND messages.push_type <> 'broadcast' AND messages.delivery_type <> 'user'"
    )
    db.execute(
        "DELETE FROM deliveries WHERE (message_seq, device_id) IN"
        " (SELECT seq, target_id FROM messages WHERE d_state IS NOT NULL)"
    )
    for unused in (
        "idx_messages_app_id_created_at",
        "idx_messages_app_id_delivery_type_target_id_status",
        "idx_deliveries_app_id_device_id_status_message_seq",
        "messages_created_at",  # retention pages over message_id (time-ordered) instead
    ):
        db.execute(f"DROP INDEX IF EXISTS {unused}")
    db.execute(
        "CREATE INDEX IF NOT EXISTS messages_pending ON messages (app_id, target_id, seq)"
        " WHERE d_state = 0"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS messages_user_open ON messages (app_id, target_id)"
        " WHERE delivery_type = 'user' AND status IN (0, 1)"
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS deliveries_pending"
        " ON deliveries (app_id, device_id, message_seq) WHERE status = 0"
    )


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1]
MIGRATIONS.append(_listing_indexes)
MIGRATIONS.append(_push_types_and_moderation)
MIGRATIONS.append(_daily_counts)
MIGRATIONS.append(_folded_deliveries)
MIGRATIONS.append(sqlite_vendor_channels)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns that version."""
    db = sqlite_utils.Database(conn)
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, step in enumerate(MIGRATIONS, start=1):
        if version < number:
            conn.execute("BEGIN IMMEDIATE")
            try:
                step(db)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            version = number
    return version


CACHE_KIB = -65_536  # negative: KiB, not pages


def connect(path: str, *, max_pages: int | None = None) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=FULL: a commit is on disk.

    `max_pages` caps the file (PRAGMA max_page_count): past it writes fail
    with SQLITE_FULL exactly as on a full disk (the writer turns that into
    StoreUnavailable). The cap belongs to this connection only.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=CountingConnection
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=OFF")
    # 64 MiB of page cache (the default is 2 MiB): acks and sent marks touch
    # the deliveries of devices all over the file, and with the default cache
    # every one of them re-read its pages (4x the CPU, mostly in pread).
    conn.execute(f"PRAGMA cache_size = {CACHE_KIB}")
    if max_pages is not None:
        conn.execute(f"PRAGMA max_page_count = {int(max_pages)}")
    return conn

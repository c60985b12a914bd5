"""A PostgreSQL database of schema version 1 (every delivery in `deliveries`)
migrated to the folded model (docs/data-model.md) reads back the same:
details per device, backlogs, the list."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from gateway.clock import ManualClock
from gateway.ids import new_id
from gateway.store import PostgresStore
from gateway.store.postgres.schema import MIGRATIONS
from gateway.store.records import Delivery
from tests.store_pg.database import session_database

NOW = 1_795_000_000_000
DEVICES = ("phone", "tablet", "watch")


def fill_v1(conn: psycopg.Connection[Any]) -> None:
    conn.execute(MIGRATIONS[0].encode())
    conn.execute(
        "CREATE TABLE pushgate_schema (one boolean PRIMARY KEY DEFAULT true CHECK (one),"
        " version integer NOT NULL)"
    )
    conn.execute("INSERT INTO pushgate_schema (version) VALUES (1)")
    conn.execute("INSERT INTO apps VALUES ('a', 'a', 'hash', 's', false, %s)", (NOW,))
    for device in DEVICES:
        conn.execute(
            "INSERT INTO devices (app_id, device_id, platform, user_id, last_seen, created_at)"
            " VALUES ('a', %s, 'android', %s, %s, %s)",
            (device, None if device == "watch" else "alice", NOW, NOW),
        )
    messages = [(n, "simple", "android", DEVICES[n % 3]) for n in range(12)]
    messages += [(20, "simple", "user", "alice"), (21, "broadcast", "android", "all")]
    for n, push_type, delivery_type, target in messages:
        created = NOW - 1000 + n
        acked = n % 4 == 0
        conn.execute(
            "INSERT INTO messages (seq, message_id, app_id, msg_key, push_type, delivery_type,"
            " target_id, title, content, ext, content_hash, created_at, expires_at,"
            " modified_at, status) VALUES (%s, %s, 'a', %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s)",
            (
                n + 1,
                new_id(created),
                f"k{n}",
                push_type,
                delivery_type,
                target,
                f"t{n}",
                f"c{n}",
                json.dumps({"n": str(n)}),
                f"h{n}",
                created,
                NOW + 86_400_000,
                created + 5 if acked else created,
                2 if acked else 0,
            ),
        )
        targets = {"alice": ["phone", "tablet"], "all": ["phone", "watch"]}.get(target, [target])
        for k, device in enumerate(targets):
            done = acked or (k == 0 and n >= 20)
            conn.execute(
                "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at,"
                " sent_at, acked_at, modified_at) VALUES (%s, 'a', %s, %s, %s, %s, %s, %s)",
                (
                    n + 1,
                    device,
                    2 if done else 0,
                    created,
                    created + 3 if n % 2 else None,
                    created + 5 if done else None,
                    created + 5 if done else created,
                ),
            )


def old_details(conn: psycopg.Connection[Any]) -> dict[str, list[Delivery]]:
    out: dict[str, list[Delivery]] = {}
    for message_id, seq in conn.execute("SELECT message_id, seq FROM messages").fetchall():
        rows = conn.execute(
            "SELECT device_id, status, channel, code, created_at, sent_at, acked_at, modified_at"
            ' FROM deliveries WHERE message_seq = %s ORDER BY device_id COLLATE "C"',
            (seq,),
        ).fetchall()
        out[message_id] = [Delivery(*r) for r in rows]
    return out


async def test_a_v1_database_migrates_with_details_and_backlogs_the_same() -> None:
    url = session_database().fresh_url()
    with psycopg.connect(url, autocommit=True) as conn:
        fill_v1(conn)
        before = old_details(conn)
        backlogs = {
            device: [
                int(r[0])
                for r in conn.execute(
                    "SELECT message_seq FROM deliveries WHERE device_id = %s AND status = 0"
                    " ORDER BY message_seq",
                    (device,),
                ).fetchall()
            ]
            for device in DEVICES
        }
    store = PostgresStore(url, clock=ManualClock(NOW))
    await store.open()
    try:
        for message_id, deliveries in before.items():
            found = await store.get_message("a", message_id)
            assert found is not None
            assert found[1] == deliveries, message_id
        for device, seqs in backlogs.items():
            page = await store.pending_page("a", device, after_seq=0, limit=100)
            assert [m.seq for m in page[1]] == seqs, device
        listed = await store.list_messages("a", before_seq=None, limit=100)
        assert len(listed) == 13
    finally:
        await store.aclose()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM pushgate_schema").fetchone() == (len(MIGRATIONS),)
        # Only user and broadcast deliveries are left as rows.
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (4,)

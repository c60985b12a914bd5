"""Migrating a file written by the previous data model (schema v4: every delivery
in `deliveries`) to the folded one keeps every message listed, searchable and
with the same details, and every device's backlog the same."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import sqlite_utils

from gateway.ids import new_id
from gateway.store import devices, listing, schema
from gateway.store import queries as q
from gateway.store.records import Delivery, Message

NOW = 1_795_000_000_000
DEVICES = ("phone", "tablet", "watch")


def v4_file(path: Path) -> sqlite3.Connection:
    """A file with the migrations before the folded model applied, as v4 left it."""
    conn = schema.connect(str(path))
    db = sqlite_utils.Database(conn)
    for number, step in enumerate(schema.MIGRATIONS, start=1):
        if step is schema._folded_deliveries:
            break
        step(db)
        conn.execute(f"PRAGMA user_version = {number}")
    return conn


def old_message(conn: sqlite3.Connection, n: int, **fields: Any) -> int:
    """A message row as v4 wrote it; `n` orders creation."""
    created = NOW - 10_000 + n
    row: dict[str, Any] = {
        "message_id": new_id(created),
        "app_id": "a",
        "msg_key": f"key-{n}",
        "push_type": "simple",
        "delivery_type": "android",
        "target_id": "phone",
        "title": f"title {n}",
        "content": f"content {n}",
        "ext": json.dumps({"n": str(n)}),
        "content_hash": f"hash {n}",
        "created_at": created,
        "expires_at": NOW + 86_400_000,
        "modified_at": created,
        "status": 0,
    }
    row.update(fields)
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cur = conn.execute(f"INSERT INTO messages ({names}) VALUES ({marks})", list(row.values()))
    assert cur.lastrowid is not None
    return cur.lastrowid


def old_delivery(conn: sqlite3.Connection, seq: int, device: str, **fields: Any) -> None:
    created = conn.execute("SELECT created_at FROM messages WHERE seq = ?", (seq,)).fetchone()[0]
    row: dict[str, Any] = {
        "message_seq": seq,
        "app_id": "a",
        "device_id": device,
        "status": 0,
        "created_at": created,
        "modified_at": created,
    }
    row.update(fields)
    names = ", ".join(row)
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO deliveries ({names}) VALUES ({marks})", list(row.values()))


def fill(conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT INTO apps VALUES ('a', 'a', 'hash', 's', 0, ?), ('v', 'v', 'hash-v', 's', 1, ?)",
        (NOW, NOW),
    )
    for device in DEVICES:
        user = "alice" if device != "watch" else None
        conn.execute(
            "INSERT INTO devices VALUES ('a', ?, 'android', ?, ?, ?)", (device, user, NOW, NOW)
        )
    t = NOW - 10_000
    for n in range(30):
        device = DEVICES[n % 3]
        seq = old_message(conn, n, target_id=device, delivery_type=("android", "ios")[n % 2])
        if n % 5 == 0:  # acked
            conn.execute(
                "UPDATE messages SET status = 2, modified_at = ? WHERE seq = ?", (t + 90 + n, seq)
            )
            old_delivery(
                conn,
                seq,
                device,
                status=2,
                sent_at=t + 50 + n,
                acked_at=t + 90 + n,
                modified_at=t + 90 + n,
            )
        elif n % 5 == 1:  # sent, not acked
            old_delivery(conn, seq, device, sent_at=t + 50 + n)
        else:
            old_delivery(conn, seq, device)
    old_message(conn, 40, revoked=1)  # its pending delivery was deleted by the revoke
    old_message(conn, 41, app_id="v", status=-1, verification="pending")
    approved = old_message(conn, 42, app_id="v", verification="approved", modified_at=t + 100)
    old_delivery(conn, approved, "phone", app_id="v", created_at=t + 100, modified_at=t + 100)
    for n in (43, 44):
        seq = old_message(
            conn,
            n,
            delivery_type="user",
            target_id="alice",
            status=2 if n == 43 else 0,
            modified_at=t + 200,
        )
        old_delivery(
            conn, seq, "phone", status=2 if n == 43 else 0, acked_at=t + 200, modified_at=t + 200
        )
        old_delivery(conn, seq, "tablet")
    old_message(conn, 45, delivery_type="user", target_id="bob", status=1)  # no device bound
    cast = old_message(conn, 46, push_type="broadcast", target_id="all")
    old_delivery(conn, cast, "phone", status=2, sent_at=t + 300, acked_at=t + 300)
    old_delivery(conn, cast, "watch")
    old_message(conn, 47, push_type="multiple", target_id="watch", msg_key="order-7")
    old_delivery(conn, conn.execute("SELECT max(seq) FROM messages").fetchone()[0], "watch")
    conn.execute(
        "INSERT OR REPLACE INTO daily_counts (app_id, day, pushes, ackable, acked)"
        " SELECT app_id, created_at / 86400000, count(*), sum(push_type <> 'broadcast'),"
        " sum(push_type <> 'broadcast' AND status = 2) FROM messages"
        " GROUP BY app_id, created_at / 86400000"
    )


def details(conn: sqlite3.Connection) -> dict[str, tuple[Message | None, list[Delivery]]]:
    """Every message as push details show it, its deliveries read from v4's table."""
    out: dict[str, tuple[Message | None, list[Delivery]]] = {}
    for app_id, message_id, seq in conn.execute("SELECT app_id, message_id, seq FROM messages"):
        rows = conn.execute(
            "SELECT device_id, status, channel, code, created_at, sent_at, acked_at, modified_at"
            " FROM deliveries WHERE message_seq = ? ORDER BY device_id",
            (seq,),
        ).fetchall()
        out[message_id] = (
            q._message_with_state(conn, app_id, message_id),
            [Delivery(*r) for r in rows],
        )
    return out


def old_backlog(conn: sqlite3.Connection, app_id: str, device: str) -> list[int]:
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT m.seq FROM deliveries d JOIN messages m ON m.seq = d.message_seq"
            " WHERE d.app_id = ? AND d.device_id = ? AND d.status = 0 AND m.expires_at > ?"
            " AND m.revoked = 0 AND m.status <> -1 ORDER BY m.seq",
            (app_id, device, NOW),
        )
    ]


def snapshot(conn: sqlite3.Connection) -> dict[str, Any]:
    """What the list, the search and the counts read (the same SQL before and after)."""
    listed = listing.list_messages(conn, "a", before_seq=None, limit=1000, now=NOW)
    return {
        "list": listed,
        "search": [
            listing.search_message(conn, "a", m.target_id, m.msg_key, now=NOW) for m in listed
        ]
        + [listing.search_message(conn, "a", "watch", "order-7", now=NOW)],
        "counts": conn.execute("SELECT * FROM daily_counts ORDER BY app_id, day").fetchall(),
    }


def test_a_v4_file_migrates_with_every_message_listed_searchable_and_detailed_the_same(
    tmp_path: Path,
) -> None:
    conn = v4_file(tmp_path / "v4.db")
    fill(conn)
    before_details = details(conn)
    before = snapshot(conn)
    backlogs = {(a, d): old_backlog(conn, a, d) for a in ("a", "v") for d in DEVICES}
    assert sum(1 for _, d in before_details.values() if d) == 35
    conn.close()

    conn = schema.connect(str(tmp_path / "v4.db"))
    assert schema.migrate(conn) == len(schema.MIGRATIONS)
    assert snapshot(conn) == before
    after_details = {
        message_id: q.get_message(conn, message.app_id, message_id)
        for message_id, (message, _) in before_details.items()
        if message is not None
    }
    assert after_details == {
        message_id: (message, deliveries)
        for message_id, (message, deliveries) in before_details.items()
    }
    for (app_id, device), seqs in backlogs.items():
        _, page = devices.pending_page(conn, app_id, device, after_seq=0, limit=1000, now=NOW)
        assert [m.seq for m in page] == seqs, (app_id, device)
    # Single-device deliveries left the table; user and broadcast ones stayed.
    kinds = conn.execute(
        "SELECT DISTINCT m.delivery_type = 'user' OR m.push_type = 'broadcast'"
        " FROM deliveries d JOIN messages m ON m.seq = d.message_seq"
    ).fetchall()
    assert kinds == [(1,)]
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 6
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_pending", "deliveries_pending", "messages_user_open"} <= indexes
    assert "idx_messages_app_id_delivery_type_target_id_status" not in indexes
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

"""EXPLAIN QUERY PLAN of every statement the SQLite store sends, as Markdown.

    .venv/bin/python -m tests.gateway.store_plans > docs/sqlite-plans.md

It runs the store's own functions (gateway/store/*.py) on a connection that,
before each statement, asks SQLite for its plan with the exact SQL and
parameters: so the plans are those of what the store sends. The file holds
some of every kind of row (device, user and broadcast messages, acked and
pending). SQLite plans without statistics (no ANALYZE), so the plans do not
depend on how many rows there are. test_store_plans.py checks that none of
them scans a table.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway.store import broadcasts, deferred, devices, listing, stats
from gateway.store import queries as q
from gateway.store.records import NewMessage
from gateway.store.schema import migrate

NOW = 1_795_000_000_000
DAY = 86_400_000
KEPT = NOW - 30 * DAY  # the retention cutoff
_NOT_EXPLAINED = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "PRAGMA")


class Explaining(sqlite3.Connection):
    """A connection that records the plan of each statement before running it."""

    label = ""
    plans: list[tuple[str, str, list[str]]]

    def _explain(self, sql: str, params: Any) -> None:
        if sql.lstrip().upper().startswith(_NOT_EXPLAINED):
            return
        rows = super().execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        depth: dict[int, int] = {0: -1}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, -1) + 1
            lines.append("  " * depth[node] + str(detail))
        self.plans.append((self.label, sql, lines))

    def execute(self, sql: str, params: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        self._explain(sql, params)
        return super().execute(sql, params)

    def executemany(  # type: ignore[override]
        self, sql: str, params: Iterable[Any], /
    ) -> sqlite3.Cursor:
        rows = list(params)
        if rows:
            self._explain(sql, rows[0])
        return super().executemany(sql, rows)


def _push(delivery_type: str, target: str, n: int, push_type: str = "simple") -> NewMessage:
    return NewMessage(push_type, delivery_type, target, f"title {n}", f"content {n}", {})


def collect(path: Path) -> list[tuple[str, str, list[str]]]:
    """Fill a store file, then run every store function once, recording the plans."""
    plain = sqlite3.connect(path, isolation_level=None)
    migrate(plain)
    plain.close()
    conn = sqlite3.connect(path, isolation_level=None, factory=Explaining)
    assert isinstance(conn, Explaining)
    conn.plans = []

    def run(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        conn.label = label
        return fn(conn, *args, **kwargs)

    app = run(
        "upsert_app",
        q.upsert_app,
        app_id="a",
        name="a",
        api_key="k",
        secret="s",
        verify=False,
        now=NOW,
    )
    strict = run(
        "upsert_app",
        q.upsert_app,
        app_id="v",
        name="v",
        api_key="kv",
        secret="s",
        verify=True,
        now=NOW,
    )
    for d in range(20):
        run("device_online", devices.device_online, "a", f"dev-{d}", "android", NOW, 100)
    run("bind", devices.bind, "a", "dev-0", "user-0", NOW)
    pushes = [_push("android", f"dev-{n % 20}", n) for n in range(200)]
    pushes += [_push("user", "user-0", n) for n in range(20)]
    outcomes = run("insert_messages", q.insert_messages, app, pushes, NOW, KEPT)
    run(
        "insert_messages (a repeated msg_key)",
        q.insert_messages,
        app,
        [NewMessage("simple", "android", "dev-1", "t", "c", msg_key="key")],
        NOW,
        KEPT,
    )
    (cast,) = run(
        "insert_messages (a broadcast)",
        q.insert_messages,
        app,
        [_push("android", "all", 0, "broadcast")],
        NOW,
        KEPT,
    )
    run(
        "open_broadcast",
        broadcasts.open_broadcast,
        "a",
        cast.message.seq,
        [("dev-1", "android"), ("dev-2", "android")],
        NOW,
    )
    ids = [o.message.message_id for o in outcomes]
    device_ids = [o.message.message_id for o in outcomes if o.message.target_id == "dev-1"]
    user_ids = [o.message.message_id for o in outcomes if o.message.target_id == "user-0"]
    run("write_sent", deferred.write_sent, [("a", "dev-1", device_ids[:5], NOW)])
    run("write_sent (user messages)", deferred.write_sent, [("a", "dev-0", user_ids[:5], NOW)])
    run("write_acks", deferred.write_acks, [("a", "dev-1", device_ids[:5], NOW, None)])
    run(
        "write_acks (user messages)", deferred.write_acks, [("a", "dev-0", user_ids[:5], NOW, None)]
    )
    run("pending_page", devices.pending_page, "a", "dev-1", after_seq=0, limit=500, now=NOW)
    run(
        "pending_page (catch-up after a bind)",
        devices.pending_page,
        "a",
        "dev-0",
        after_seq=0,
        limit=500,
        now=NOW,
        user_id="user-0",
        upto_seq=10_000,
    )
    run("device_offline", devices.device_offline, "a", "dev-1", NOW)
    run("bind (another user)", devices.bind, "a", "dev-0", "user-1", NOW)
    run("unbind", devices.unbind, "a", "dev-0", NOW)
    run("get_device", devices.get_device, "a", "dev-1")
    run("user_devices", devices.user_devices, "a", "user-0")
    run("get_message", q.get_message, "a", ids[0])
    run("list_messages", listing.list_messages, "a", before_seq=None, limit=50, now=NOW)
    run("list_messages (next page)", listing.list_messages, "a", before_seq=100, limit=50, now=NOW)
    run("search_message", listing.search_message, "a", "dev-1", "key", now=NOW)
    run("broadcast_stats", broadcasts.broadcast_stats, "a", cast.message.message_id)
    run("push_stats", stats.push_stats, "a", NOW - NOW % DAY)
    (waiting,) = run(
        "insert_messages (verifying app)",
        q.insert_messages,
        strict,
        [_push("android", "dev-1", 0)],
        NOW,
        KEPT,
    )
    run("verify", q.verify, "v", waiting.message.message_id, True, NOW)
    run("revoke", q.revoke, "v", waiting.message.message_id)
    run("purge_before", listing.purge_before, NOW + 1, 1000)
    conn.close()
    return conn.plans


def markdown(plans: list[tuple[str, str, list[str]]]) -> str:
    out = [
        "# SQLite query plans",
        "",
        "Generated by `.venv/bin/python -m tests.gateway.store_plans > docs/sqlite-plans.md`:",
        "the plan SQLite chose for every statement the store's functions sent (the same",
        "statement is shown once). See [data-model.md](data-model.md) for why each index exists.",
        "",
    ]
    seen: set[str] = set()
    for label, sql, lines in plans:
        if sql in seen:
            continue
        seen.add(sql)
        shown = re.sub(r"\(\?(,\?){5,}\)", "(?, ?, …)", " ".join(sql.split()))  # long IN lists
        out += [f"## {label}", "", "```sql", shown, "```", "", "```"]
        out += lines
        out += ["```", ""]
    return "\n".join(out)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="store-plans-") as tmp:
        print(markdown(collect(Path(tmp) / "plans.db")))


if __name__ == "__main__":
    main()

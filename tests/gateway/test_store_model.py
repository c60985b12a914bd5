"""The SQLite data model (docs/data-model.md): a message to one device holds its
delivery in its own row, the others keep delivery rows; what the API reads
(details per device, the backlog, status, counts) is the same either way.

The store's functions run on a real file, each call in its own transaction
as the writer runs them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from gateway.clock import ManualClock
from gateway.store import broadcasts, deferred, devices, listing, stats
from gateway.store import queries as q
from gateway.store.records import App, Message, NewMessage
from gateway.store.schema import connect, migrate
from gateway.store.sqlite import SqliteStore
from tests.gateway.store_plans import collect

NOW = 1_795_000_000_000
DAY = 86_400_000
KEPT = NOW - 30 * DAY


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(str(tmp_path / "model.db"))
    migrate(connection)
    yield connection
    connection.close()


def tx(conn: sqlite3.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args, **kwargs)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def app(conn: sqlite3.Connection, verify: bool = False) -> App:
    name = "strict" if verify else "a"
    return tx(
        conn, q.upsert_app, app_id=name, name=name, api_key=name, secret="s", verify=verify, now=NOW
    )


def push(conn: sqlite3.Connection, to: App, delivery_type: str, target: str, n: int) -> Message:
    item = NewMessage("simple", delivery_type, target, f"title {n}", f"content {n}", {"n": str(n)})
    (outcome,) = tx(conn, q.insert_messages, to, [item], NOW + n, KEPT)
    message: Message = outcome.message
    return message


def ledger(conn: sqlite3.Connection, message: Message) -> list[tuple[Any, ...]]:
    found = tx(conn, q.get_message, message.app_id, message.message_id)
    assert found is not None
    return [
        (d.device_id, d.status, d.channel, d.code, d.created_at, d.sent_at, d.acked_at)
        for d in found[1]
    ]


def test_a_device_push_is_one_row_and_its_ledger_goes_pending_sent_acked(
    conn: sqlite3.Connection,
) -> None:
    a = app(conn)
    message = push(conn, a, "android", "phone", 1)
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert ledger(conn, message) == [("phone", 0, "self", None, NOW + 1, None, None)]
    tx(conn, deferred.write_sent, [("a", "phone", [message.message_id], NOW + 10)])
    assert ledger(conn, message) == [("phone", 0, "self", None, NOW + 1, NOW + 10, None)]
    # An ack from another device changes nothing; the device's own acks the message.
    assert tx(conn, deferred.write_acks, [("a", "tablet", [message.message_id], NOW + 20, None)])
    assert ledger(conn, message)[0][1] == 0
    counts = tx(conn, deferred.write_acks, [("a", "phone", [message.message_id], NOW + 30, None)])
    assert counts == [1]
    assert ledger(conn, message) == [("phone", 2, "self", None, NOW + 1, NOW + 10, NOW + 30)]
    again = tx(conn, deferred.write_acks, [("a", "phone", [message.message_id], NOW + 40, None)])
    assert again == [0]
    found = tx(conn, q.get_message, "a", message.message_id)
    assert (found[0].status, found[0].modified_at) == (2, NOW + 30)
    assert tx(conn, stats.push_stats, "a", NOW - NOW % DAY) == stats.PushStats(1, 1, 1)


def test_an_ack_before_any_sent_mark_records_both_times(conn: sqlite3.Connection) -> None:
    message = push(conn, app(conn), "ios", "phone", 1)
    tx(conn, deferred.write_acks, [("a", "phone", [message.message_id], NOW + 5, None)])
    assert ledger(conn, message) == [("phone", 2, "self", None, NOW + 1, NOW + 5, NOW + 5)]
    # A late sent mark leaves the first time.
    tx(conn, deferred.write_sent, [("a", "phone", [message.message_id], NOW + 9)])
    assert ledger(conn, message)[0][5] == NOW + 5


def test_a_user_message_keeps_a_delivery_per_device_and_the_first_ack_acks_it(
    conn: sqlite3.Connection,
) -> None:
    a = app(conn)
    for device in ("tablet", "phone"):
        tx(conn, devices.bind, "a", device, "alice", NOW)
    message = push(conn, a, "user", "alice", 1)
    assert [row[:2] for row in ledger(conn, message)] == [("phone", 0), ("tablet", 0)]
    tx(conn, deferred.write_acks, [("a", "tablet", [message.message_id], NOW + 7, None)])
    assert [row[:2] for row in ledger(conn, message)] == [("phone", 0), ("tablet", 2)]
    found = tx(conn, q.get_message, "a", message.message_id)
    assert found[0].status == 2
    assert tx(conn, stats.push_stats, "a", NOW - NOW % DAY) == stats.PushStats(1, 1, 1)


def test_the_backlog_merges_own_rows_and_delivery_rows_in_creation_order_page_by_page(
    conn: sqlite3.Connection,
) -> None:
    a = app(conn)
    tx(conn, devices.bind, "a", "phone", "alice", NOW)
    cast = tx(
        conn,
        q.insert_messages,
        a,
        [NewMessage("broadcast", "android", "all", "t", "c")],
        NOW,
        KEPT,
    )[0].message
    order = [cast.seq]
    for n in range(12):
        to_user = n % 3 == 0
        message = push(
            conn, a, "user" if to_user else "android", "alice" if to_user else "phone", n
        )
        order.append(message.seq)
        push(conn, a, "android", "other-phone", n)  # not this device's
    user, first = tx(conn, devices.device_online, "a", "phone", "android", NOW, 5)
    assert user == "alice"
    pages = [first]
    while pages[-1]:
        after = pages[-1][-1].seq
        pages.append(
            tx(conn, devices.pending_page, "a", "phone", after_seq=after, limit=5, now=NOW)[1]
        )
    assert [len(p) for p in pages] == [5, 5, 3, 0]
    assert [m.seq for p in pages for m in p] == order
    # Acked, they leave the backlog whichever row holds their delivery.
    ids = [m.message_id for m in first]
    tx(conn, deferred.write_acks, [("a", "phone", ids, NOW + 1, None)])
    _, left = tx(conn, devices.pending_page, "a", "phone", after_seq=0, limit=100, now=NOW)
    assert [m.seq for m in left] == order[5:]


def test_revoke_and_verification_of_a_device_message(conn: sqlite3.Connection) -> None:
    strict = app(conn, verify=True)
    message = push(conn, strict, "android", "phone", 1)
    assert ledger(conn, message) == []
    approved = tx(conn, q.verify, "strict", message.message_id, True, NOW + 50)
    assert approved.device_ids == ("phone",)
    assert ledger(conn, message) == [("phone", 0, "self", None, NOW + 50, None, None)]
    _, page = tx(conn, devices.pending_page, "strict", "phone", after_seq=0, limit=9, now=NOW)
    assert [m.message_id for m in page] == [message.message_id]
    _, stopped = tx(conn, q.revoke, "strict", message.message_id)
    assert stopped == ["phone"]
    assert ledger(conn, message) == []
    _, page = tx(conn, devices.pending_page, "strict", "phone", after_seq=0, limit=9, now=NOW)
    assert page == []
    assert tx(
        conn, deferred.write_acks, [("strict", "phone", [message.message_id], NOW, None)]
    ) == [0]


def test_retention_purges_a_device_message_with_its_delivery(conn: sqlite3.Connection) -> None:
    a = app(conn)
    push(conn, a, "android", "phone", 1)
    tx(conn, devices.bind, "a", "phone", "alice", NOW)
    push(conn, a, "user", "alice", 2)
    cast = tx(
        conn, q.insert_messages, a, [NewMessage("broadcast", "ios", "all", "t", "c")], NOW, KEPT
    )
    tx(conn, broadcasts.open_broadcast, "a", cast[0].message.seq, [("x", "ios"), ("y", "ios")], NOW)
    assert tx(conn, listing.purge_before, NOW + 2, 1000) == (2, 3)  # the user message is newer
    assert tx(conn, listing.purge_before, NOW + 3, 1000) == (1, 1)
    assert tx(conn, listing.purge_before, NOW + 3, 1000) == (0, 0)
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_no_statement_of_the_store_scans_a_table_or_sorts_a_page(tmp_path: Path) -> None:
    plans = collect(tmp_path / "plans.db")
    assert len(plans) > 30
    for label, sql, lines in plans:
        for line in lines:
            scans_table = line.strip().startswith("SCAN") and "VIRTUAL TABLE" not in line
            assert not scans_table, f"{label}: {sql}\n{line}"
            # A page (LIMIT) comes in index order: sorting it would read all of it first.
            sorts_page = "TEMP B-TREE" in line and "LIMIT" in sql
            assert not sorts_page, f"{label}: {sql}\n{line}"


async def test_a_sent_mark_acked_in_the_same_commit_is_written_by_the_ack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    skipped: list[set[tuple[str, str, str]]] = []
    write_sent = deferred.write_sent

    def recording(conn: sqlite3.Connection, items: Any, acked: Any = frozenset()) -> int:
        skipped.append(set(acked))
        return write_sent(conn, items, acked)

    monkeypatch.setattr(deferred, "write_sent", recording)
    clock = ManualClock(NOW)
    store = SqliteStore(str(tmp_path / "store.db"), clock=clock)
    await store.open()
    try:
        a = await store.upsert_app(app_id="a", name="a", api_key="k", secret="s", verify=False)
        item = NewMessage("simple", "android", "phone", "t", "c")
        quick, slow = [(await store.insert_messages(a, [item]))[0].message for _ in range(2)]
        # Hold the writer in an operation, so both deferred writes below wait
        # for the same next group commit.
        holding, release = threading.Event(), threading.Event()

        def hold(conn: sqlite3.Connection) -> None:
            holding.set()
            release.wait(30)

        acked = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._writer.call, hold)
            await trio.to_thread.run_sync(holding.wait, 30)
            clock.set(NOW + 10)
            store.queue_sent_nowait("a", "phone", [quick.message_id, slow.message_id])
            clock.set(NOW + 20)
            store.queue_ack_nowait("a", "phone", [quick.message_id], lambda *_: acked.set())
            release.set()
        with trio.fail_after(30):
            await acked.wait()
        found = await store.get_message("a", quick.message_id)
        assert found is not None
        (delivery,) = found[1]
        # The ack's statement set sent_at too; the sent mark skipped the pair.
        assert (delivery.status, delivery.sent_at, delivery.acked_at) == (2, NOW + 20, NOW + 20)
        other = await store.get_message("a", slow.message_id)
        assert other is not None
        assert [(d.status, d.sent_at) for d in other[1]] == [(0, NOW + 10)]
        assert skipped == [{("a", "phone", quick.message_id)}]
    finally:
        await store.aclose()

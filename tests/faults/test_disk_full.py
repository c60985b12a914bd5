"""A full disk (PRAGMA max_page_count): 503, never a false 2xx, live devices unharmed, recovery."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from gateway.store.records import StoreUnavailable
from gateway.store.schema import connect, migrate
from gateway.store.writer import Writer
from protocol import Ack, Error, Ping, Pong, Push, Welcome
from tests.harness import (
    SAFETY_NET,
    ServerProcess,
    api_client,
    connect_device,
    hello_for,
    receive,
    running_gateway,
    start_server_process,
    wait_until,
)

from .common import assert_clean_log, integrity_ok

MAX_PAGES = 60  # a fresh schema takes 20 pages of 4 KiB
BIG = "x" * 3000  # each push takes most of a page


async def push(client: object, target: str, n: int) -> tuple[int, dict[str, object]]:
    body = {"delivery_type": "android", "target_id": target, "title": f"t{n}", "content": BIG}
    response = await client.post("/v1/push/simple", json=body)  # type: ignore[attr-defined]
    return response.status_code, response.json()


async def fill(client: object, target: str) -> tuple[list[str], dict[str, object]]:
    """Push until the store refuses; returns the accepted ids and the refusal."""
    accepted: list[str] = []
    for n in range(1000):
        status, answer = await push(client, target, n)
        if status != 200:
            assert status == 503, answer
            return accepted, answer
        accepted.append(str(answer["message_id"]))
    raise AssertionError("the store never filled up")


async def test_full_store_answers_503_keeps_devices_and_recovers(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "full.db"
    server = start_server_process(db, "--max-db-pages", str(MAX_PAGES))
    server_processes.append(server)
    live, _ = await connect_device(server.ws_url, "live")
    async with api_client(server.api) as client:
        # Normal service first: a push reaches the live device and is acked.
        status, answer = await push(client, "live", 0)
        assert status == 200
        first = await receive(live)
        assert isinstance(first, Push) and first.id == answer["message_id"]

        stored, refusal = await fill(client, "offline")
        assert stored, "nothing fit before the cap"
        error = refusal["error"]
        assert isinstance(error, dict) and error["code"] == "store_unavailable", refusal
        assert "full" in str(error["message"])
        # Still full: every further push is refused, none half-accepted.
        for n in range(5):
            status, answer = await push(client, "live", 100 + n)
            assert status == 503, answer

        # Connections already open keep working; an ack may not be recordable
        # (then a store_unavailable reply), but the connection stays.
        await live.send_frame(Ack(ids=(first.id,)))
        await live.send_frame(Ping())
        frame = await receive(live)
        if isinstance(frame, Error):
            assert frame.code == "store_unavailable"
            frame = await receive(live)
        assert isinstance(frame, Pong)
        assert (await client.get("/healthz")).status_code == 200

        # The operator frees space: old data of the offline device goes.
        with sqlite3.connect(db, timeout=10) as conn:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute(
                "DELETE FROM deliveries WHERE device_id = 'offline' AND message_seq IN"
                " (SELECT seq FROM messages WHERE target_id = 'offline' LIMIT 20)"
            )
            gone = {
                r[0]
                for r in conn.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                    " WHERE target_id = 'offline' LIMIT 20) RETURNING message_id"
                )
            }
        # No restart: pushes are accepted again and delivered.

        async def accepted_again() -> tuple[int, dict[str, object]] | None:
            result = await push(client, "live", 200)
            return result if result[0] == 200 else None

        result = await wait_until(accepted_again, "a push accepted again", poll=0.1)
        frame = await receive(live)
        assert isinstance(frame, Push) and frame.id == result[1]["message_id"]
    await live.aclose()

    # Every push that was answered 200 is still there and is delivered.
    offline, _ = await connect_device(server.ws_url, "offline")
    expected = [m for m in stored if m not in gone]
    got: list[str] = []
    with trio.fail_after(10):
        while len(got) < len(expected):
            frame = await receive(offline)
            assert isinstance(frame, Push)
            got.append(frame.id)
    assert got == expected
    await offline.aclose()
    assert server.terminate() == 0
    assert integrity_ok(db)
    log = server.log()
    assert "event=transaction_rolled_back" in log or "event=commit_failed" in log
    assert_clean_log(server)


async def test_cap_raised_at_runtime_recovers_in_process(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "cap.db", max_db_pages=MAX_PAGES) as gw:
        async with gw.http() as client:
            stored, _ = await fill(client, "dev-cap")
            applied = await gw.gateway.store.set_max_pages(MAX_PAGES * 4)
            assert applied == MAX_PAGES * 4
            status, answer = await push(client, "dev-cap", 999)
            assert status == 200, answer
        conn, _ = await gw.connect("dev-cap")
        got: list[str] = []
        with trio.fail_after(10):
            while len(got) < len(stored) + 1:
                frame = await receive(conn)
                assert isinstance(frame, Push)
                got.append(frame.id)
        assert got == [*stored, answer["message_id"]]
        await conn.aclose()


async def test_a_rolled_back_transaction_fails_every_op_in_it(tmp_path: Path) -> None:
    """SQLITE_FULL rolls back the whole group commit, not just the op that hit it.

    Ops that ran before it in the same transaction must not report success,
    and the ops after it must run in a fresh transaction (not in autocommit).
    """
    path = str(tmp_path / "writer.db")
    setup = connect(path)
    migrate(setup)
    setup.execute("CREATE TABLE blobs (b BLOB)")
    pages = setup.execute("PRAGMA page_count").fetchone()[0]
    setup.close()

    def open_capped() -> sqlite3.Connection:
        return connect(path, max_pages=pages + 3)

    writer = Writer(open_capped)
    writer.start()
    gate, gate_entered = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def insert(size: int) -> object:
        def op(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO blobs VALUES (?)", (b"x" * size,))
            return size

        return op

    async def call(name: str, fn: object) -> None:
        try:
            results[name] = await writer.call(fn)  # type: ignore[arg-type]
        except StoreUnavailable as exc:
            results[name] = exc

    def hold(conn: sqlite3.Connection) -> bool:
        gate_entered.set()
        return gate.wait(SAFETY_NET)

    async with trio.open_nursery() as nursery:
        # Hold the writer thread so the next three ops form one batch: each is
        # queued (its caller blocked on the result) before the next is started.
        nursery.start_soon(call, "gate", hold)
        await wait_until(gate_entered.is_set, "the writer thread in the gate op")
        nursery.start_soon(call, "small", insert(100))
        await wait_all_tasks_blocked()
        nursery.start_soon(call, "huge", insert(200_000))  # far past the cap
        await wait_all_tasks_blocked()
        nursery.start_soon(call, "after", insert(200))
        await wait_all_tasks_blocked()
        gate.set()
    await writer.stop()

    assert isinstance(results["huge"], StoreUnavailable)
    # The gate and "small" ran in the transaction the failure rolled back.
    assert isinstance(results["small"], StoreUnavailable), results
    assert results["after"] == 200
    check = sqlite3.connect(path)
    sizes = sorted(len(r[0]) for r in check.execute("SELECT b FROM blobs"))
    check.close()
    assert sizes == [200], sizes


async def test_hello_while_full_is_told_to_retry(tmp_path: Path) -> None:
    """A device the store cannot record gets store_unavailable and close 1013, no crash."""
    async with running_gateway(tmp_path / "hello.db", max_db_pages=MAX_PAGES) as gw:
        async with gw.http() as client:
            await fill(client, "filler")
        refused = False
        for i in range(40):  # new device rows until one does not fit
            conn = await open_device_connection(gw.ws_url)
            # The ping is read only once the device is recorded (or refused).
            await conn.send_frames([hello_for(f"newcomer-{i:03d}-" + "y" * 114), Ping()])
            assert isinstance(await receive(conn), Welcome)
            frame = await receive(conn)
            if not isinstance(frame, Pong):
                assert isinstance(frame, Error) and frame.code == "store_unavailable", frame
                with pytest.raises(ConnectionClosed):
                    await receive(conn)
                assert conn.close_code == 1013
                refused = True
            await conn.aclose()
            if refused:
                break
        assert refused
        # A device the store already knows still gets in and is served.
        conn, _ = await gw.connect(f"newcomer-000-{'y' * 114}")
        await conn.send_frame(Ping())
        assert isinstance(await receive(conn), Pong)
        await conn.aclose()

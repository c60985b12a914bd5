"""What only the PostgreSQL store has to get right: seqs that commit out of order,
migrations shared by several nodes, and a server that goes away and comes back."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import trio

from gateway.clock import ManualClock
from gateway.store import App, PostgresStore, SchemaTooNew, StoreUnavailable
from gateway.store.postgres.locks import lock_users
from gateway.store.postgres.schema import MIGRATIONS
from tests.faults.proxy import FaultProxy, Mode
from tests.harness import SAFETY_NET, wait_until
from tests.store_pg.database import server_url, session_database
from tests.store_pg.support import push_one, simple


@asynccontextmanager
async def opened(url: str, clock: ManualClock) -> AsyncIterator[tuple[PostgresStore, App]]:
    store = PostgresStore(url, clock=clock)
    await store.open()
    try:
        app = await store.upsert_app(
            app_id="app1", name="app1", api_key="k", secret="s", verify=False
        )
        yield store, app
    finally:
        await store.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def test_a_message_committed_late_with_a_lower_seq_is_not_skipped(
    pg_url: str, clock: ManualClock
) -> None:
    """Another node's transaction took its ID before ours and commits after it: a page
    read meanwhile waits for it, so the cursor never passes the seq it commits."""
    async with opened(pg_url, clock) as (store, app):
        late = await trio.to_thread.run_sync(psycopg.connect, pg_url)
        try:
            row = late.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            late_seq = int(row[0]) << 24
            early = await push_one(store, app, simple("dev-1", "committed first"))
            assert early.seq > late_seq
            pages: list[list[str]] = []
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    _, page = await store.pending_page("app1", "dev-1", after_seq=0, limit=10)
                    pages.append([m.title for m in page])

                nursery.start_soon(read)
                await wait_until(lambda: store.unsettled_reads > 0, "the page read again")
                assert pages == []
                # What another node's writer does: a message and its delivery, then COMMIT.
                late.execute(
                    "INSERT INTO messages (seq, message_id, app_id, msg_key, push_type,"
                    " delivery_type, target_id, title, content, ext, content_hash, created_at,"
                    " expires_at, modified_at, status) VALUES (%s, 'late-id', 'app1', 'late-id',"
                    " 'simple', 'android', 'dev-1', 'committed late', 'c', '{}', 'h',"
                    " %s, %s, %s, 0)",
                    (late_seq, clock.now_ms(), clock.now_ms() + 60_000, clock.now_ms()),
                )
                late.execute(
                    "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at,"
                    " modified_at) VALUES (%s, 'app1', 'dev-1', 0, %s, %s)",
                    (late_seq, clock.now_ms(), clock.now_ms()),
                )
                await trio.to_thread.run_sync(late.commit)
            assert pages == [["committed late", "committed first"]]
        finally:
            late.close()


async def test_a_transaction_in_another_database_never_holds_a_page(
    pg_url: str, clock: ManualClock
) -> None:
    async with opened(pg_url, clock) as (store, app):
        with psycopg.connect(server_url()) as elsewhere:  # the server's own test database
            elsewhere.execute("SELECT pg_current_xact_id()")  # in progress until the end
            await push_one(store, app, simple("dev-1", "m"))
            _, page = await store.pending_page("app1", "dev-1", after_seq=0, limit=10)
            assert [m.title for m in page] == ["m"] and store.unsettled_reads == 0


async def test_nodes_starting_together_migrate_once(clock: ManualClock) -> None:
    url = session_database().fresh_url()
    stores = [PostgresStore(url, clock=clock) for _ in range(4)]
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            for store in stores:
                nursery.start_soon(store.open)
    for store in stores:
        await store.aclose()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*), max(version) FROM pushgate_schema").fetchone() == (
            1,
            len(MIGRATIONS),
        )


async def test_a_schema_newer_than_the_code_is_refused(pg_url: str, clock: ManualClock) -> None:
    async with opened(pg_url, clock):
        pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE pushgate_schema SET version = 99")
    with pytest.raises(SchemaTooNew, match="version 99, newer than this pushgate knows"):
        await PostgresStore(pg_url, clock=clock).open()


async def test_a_refused_server_at_start_is_a_clear_error(clock: ManualClock) -> None:
    url = with_port(server_url(), free_port())
    with pytest.raises(StoreUnavailable, match=r"cannot connect to PostgreSQL at .*refused"):
        await PostgresStore(url, clock=clock).open()


async def test_terminated_backends_are_replaced_without_a_failure(
    pg_url: str, clock: ManualClock
) -> None:
    """Idle connections killed by the server (pg_terminate_backend, a failover): the
    next operation runs on new ones, and no caller sees an error."""
    async with opened(pg_url, clock) as (store, app):
        await push_one(store, app, simple("dev-1", "before"))
        assert await store.get_app("app1") == app  # a read connection exists now
        database = urlsplit(pg_url).path.lstrip("/")
        with psycopg.connect(server_url(), autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND application_name LIKE 'pushgate-%%'",
                (database,),
            ).fetchone()
        assert killed is not None and killed[0] >= 2
        await push_one(store, app, simple("dev-1", "after"))
        _, page = await store.pending_page("app1", "dev-1", after_seq=0, limit=10)
        assert [m.title for m in page] == ["before", "after"]


async def test_an_unreachable_server_fails_calls_then_recovers_without_restart(
    pg_url: str, clock: ManualClock
) -> None:
    upstream = urlsplit(server_url())
    proxy = FaultProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(proxy.run)
        async with opened(with_port(pg_url, port), clock) as (store, app):
            await push_one(store, app, simple("dev-1", "before"))
            proxy.set_mode(Mode.RESET)  # every connection reset, new ones refused
            with pytest.raises(StoreUnavailable) as caught:
                await push_one(store, app, simple("dev-1", "during"))
            assert "127.0.0.1" not in str(caught.value)  # callers are not told where it is
            with pytest.raises(StoreUnavailable):
                await store.get_device("app1", "dev-1")
            assert not store.reachable
            proxy.set_mode(Mode.PASS)

            async def pushed() -> bool:
                try:
                    await push_one(store, app, simple("dev-1", "after"))
                except StoreUnavailable:
                    return False
                return True

            await wait_until(pushed, "a push accepted again", poll=0.1)
            assert store.reachable
            _, page = await store.pending_page("app1", "dev-1", after_seq=0, limit=10)
            assert [m.title for m in page] == ["before", "after"]
        nursery.cancel_scope.cancel()


async def test_each_claim_of_a_device_takes_a_newer_epoch(pg_url: str, clock: ManualClock) -> None:
    async with opened(pg_url, clock) as (store, _):
        epochs: list[int] = []

        async def claim(node: str) -> None:
            epochs.append(await store.claim_device("app1", "dev-1", node))

        with trio.fail_after(SAFETY_NET):
            async with trio.open_nursery() as nursery:  # in one group commit, most likely
                for n in range(20):
                    nursery.start_soon(claim, f"node-{n % 2}")
        assert sorted(epochs) == list(range(1, 21))
        assert await store.claim_device("app1", "dev-2", "node-0") == 1
        # A second store (another node) on the same database continues the count.
        async with opened(pg_url, clock) as (other, _):
            assert await other.claim_device("app1", "dev-1", "node-2") == 21
        device = await store.get_device("app1", "dev-1")
        assert device is not None and device.platform is None


async def test_a_push_to_a_user_waits_for_a_bind_of_that_user_on_another_node(
    pg_url: str, clock: ManualClock
) -> None:
    """Another node's bind holds the user's lock (locks.py) and commits after the push
    started: the push reads the user's devices after that commit, so the new
    device gets its delivery (without the lock it would read none: NoBindInfo)."""
    async with opened(pg_url, clock) as (store, app):
        bind = await trio.to_thread.run_sync(psycopg.connect, pg_url)
        try:
            lock_users(bind, [("app1", "user-1")])  # what a bind on another node takes
            bind.execute(
                "INSERT INTO devices (app_id, device_id, user_id, created_at)"
                " VALUES ('app1', 'dev-1', 'user-1', 0)"
            )
            outcomes: list[tuple[str, ...]] = []
            async with trio.open_nursery() as nursery:

                async def push() -> None:
                    (outcome,) = await store.insert_messages(app, [simple("user-1")])
                    outcomes.append(outcome.device_ids)

                nursery.start_soon(push)
                await wait_until(lambda: store.statistics().in_flight == 1, "the push queued")
                await wait_until(lambda: waiting_for_lock(pg_url), "the push waiting for the lock")
                await trio.to_thread.run_sync(bind.commit)
            assert outcomes == [("dev-1",)]
        finally:
            bind.close()


def waiting_for_lock(url: str) -> bool:
    with psycopg.connect(server_url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = %s",
            (urlsplit(url).path.lstrip("/"),),
        ).fetchone()
    return bool(row and row[0])

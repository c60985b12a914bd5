"""Redis failing under a running broker: a private redis-server the test kills and restarts."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import trio
from coredis.tokens import PureToken

from gateway.broker import (
    RESUBSCRIBED,
    SUBSCRIBED,
    BrokerUnavailable,
    Kick,
    RedisBroker,
    Route,
)

from .support import (
    PrivateRedis,
    ResyncLog,
    fast_config,
    free_port,
    node_info,
    raw_client,
    running_broker,
)

PREFIX = "faults:"

# coredis leaves the memory streams of a connection that never connected
# unclosed (connection/_base.py, run(): `_connect()` fails before the
# `async with` that closes them); the garbage collector frees them with a
# ResourceWarning. Only these tests make connections fail.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function MemoryObject(Send|Receive)Stream.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(autouse=True)
def _collect_leaked_streams() -> Iterator[None]:
    """Free them while the filter above applies, not in a later test."""
    yield
    gc.collect()


async def _until_ok(broker: RedisBroker) -> None:
    """Retry a real call until Redis answers again (the broker is never restarted)."""
    while True:
        try:
            await broker.lookup_routes("app1", ["probe"])
        except BrokerUnavailable:
            await trio.sleep(0.05)
            continue
        if broker.health.ok:
            return
        await trio.sleep(0.05)


async def test_killed_pubsub_connection_resubscribes_and_resyncs(
    private_redis: PrivateRedis,
) -> None:
    config = fast_config(private_redis.url, PREFIX)
    resyncs = ResyncLog()
    with trio.fail_after(30):
        async with (
            running_broker(config, "node-a", on_resubscribed=resyncs) as a,
            running_broker(config, "node-b") as b,
        ):
            await resyncs.wait_for(SUBSCRIBED)
            async with raw_client(private_redis.url) as admin:
                killed = await admin.client_kill(
                    type_=PureToken.PUBSUB
                )  # both nodes' subscriptions
            assert killed == 2
            await resyncs.wait_for(RESUBSCRIBED)
            assert a.statistics().subscriptions == 2
            while not (a.health.ok and b.health.ok):
                await trio.sleep(0.01)
            kick = Kick(app="app1", device="dev1", epoch=1)
            assert await b.publish("node-a", kick) == 1
            assert (await a.inbox.receive()).message == kick


async def test_redis_restart_fails_calls_then_recovers_without_restarting(
    private_redis: PrivateRedis,
) -> None:
    config = fast_config(private_redis.url, PREFIX, call_timeout=1.0)
    resyncs = ResyncLog()
    with trio.fail_after(60):
        async with (
            running_broker(config, "node-a", on_resubscribed=resyncs) as a,
            running_broker(config, "node-b") as b,
        ):
            await a.claim_route("app1", "dev1", 7)
            await a.claim_route("app1", "closed-meanwhile", 1)
            private_redis.kill()
            # A connection closing while Redis is down: its route is not refreshed again.
            with pytest.raises(BrokerUnavailable):
                await a.release_route("app1", "closed-meanwhile", 1)
            assert a.statistics().local_routes == 1

            for call in (
                lambda: a.claim_route("app1", "dev2", 1),
                lambda: a.lookup_routes("app1", ["dev1"]),
                lambda: a.publish("node-b", Kick(app="app1", device="d", epoch=1)),
                lambda: a.take_token("app1", 1.0, 1),
                lambda: a.live_nodes(),
            ):
                started = trio.current_time()
                with pytest.raises(BrokerUnavailable):
                    await call()
                assert trio.current_time() - started < config.call_timeout + 1
            assert not a.health.ok and a.health.last_error is not None

            private_redis.start()  # empty: every key and subscription is gone
            await _until_ok(a)
            await _until_ok(b)
            await resyncs.wait_for(RESUBSCRIBED)
            # The route is put back by the refresh that follows the resubscription,
            # and the nodes by their heartbeats.
            while await b.lookup_routes("app1", ["dev1"]) != {"dev1": Route("node-a", 7)}:
                await trio.sleep(0.05)
            assert await b.lookup_routes("app1", ["closed-meanwhile"]) == {"closed-meanwhile": None}
            while [n.info.node_id for n in await b.live_nodes()] != ["node-a", "node-b"]:
                await trio.sleep(0.05)
            kick = Kick(app="app1", device="dev1", epoch=8)
            assert await b.publish("node-a", kick) == 1
            assert (await a.inbox.receive()).message == kick


async def test_a_hung_redis_fails_calls_within_the_timeout(private_redis: PrivateRedis) -> None:
    config = fast_config(private_redis.url, PREFIX, call_timeout=0.5)
    with trio.fail_after(30):
        async with running_broker(config, "node-a") as a:
            private_redis.pause()
            try:
                started = trio.current_time()
                with pytest.raises(BrokerUnavailable):
                    await a.claim_route("app1", "dev1", 1)
                assert trio.current_time() - started < 2.0
                # The keepalive PING finds the silent subscription too.
                while a.health.subscribed:
                    await trio.sleep(0.05)
            finally:
                private_redis.resume()
            await _until_ok(a)
            assert (await a.claim_route("app1", "dev1", 1)).won


async def test_unreachable_redis_at_start_is_one_clear_error() -> None:
    config = fast_config(f"redis://127.0.0.1:{free_port()}/0", PREFIX, call_timeout=0.5)
    broker = RedisBroker(config, node_info("node-a"))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(BrokerUnavailable, match="ping"):
                await nursery.start(broker.run)
    assert not broker.health.ok
    with pytest.raises(BrokerUnavailable, match="not running"):
        await broker.claim_route("app1", "dev1", 1)

"""Pub/sub between nodes on the machine's Redis: round trips, junk, and a bounded inbox."""

from __future__ import annotations

from dataclasses import replace

import pytest
import trio

from gateway.broker import (
    OVERFLOW,
    SUBSCRIBED,
    Broadcast,
    BrokerConfig,
    Deliver,
    Inbound,
    Kick,
    RedisBroker,
    Revoke,
)
from gateway.broker.keys import Keys

from .support import ResyncLog, raw_client, running_broker


async def _wait_received(broker: RedisBroker, count: int) -> None:
    while broker.statistics().received < count:
        await trio.sleep(0.01)


async def test_started_broker_is_healthy_and_resynced_once(config: BrokerConfig) -> None:
    resyncs = ResyncLog()
    with trio.fail_after(20):
        async with running_broker(config, "node-a", on_resubscribed=resyncs) as a:
            assert a.health.ok and a.health.reachable and a.health.subscribed
            await resyncs.wait_for(SUBSCRIBED)
            assert a.statistics().subscriptions == 1
        assert not a.health.ok  # stopped


async def test_publish_to_one_node_and_to_all(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a, running_broker(config, "node-b") as b:
            kick = Kick(app="app1", device="dev1", epoch=9)
            assert await a.publish("node-b", kick) == 1
            assert await b.inbox.receive() == Inbound(origin="node-a", channel="node", message=kick)

            assert await a.publish("nobody", kick) == 0  # a dead node hears nothing

            broadcast = Broadcast(app="app1", message_id="b1", payload=b"frame", platform="ios")
            assert await b.publish_all(broadcast) == 2
            for broker in (a, b):
                received = await broker.inbox.receive()
                assert received == Inbound(origin="node-b", channel="all", message=broadcast)


async def test_junk_on_a_channel_is_counted_and_ignored(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a:
            async with raw_client(config.url) as client:
                channel = Keys(config.prefix).node_channel("node-a")
                await client.publish(channel, b"\xc1 not msgpack")
                await client.publish(channel, b"\x81\xa1t\xa8teleport")
            revoke = Revoke(app="app1", message_id="m1")
            await a.publish("node-a", revoke)
            assert (await a.inbox.receive()).message == revoke
            assert a.statistics().bad_messages == 2 and a.statistics().received == 3


async def test_oversized_message_is_refused_before_publishing(config: BrokerConfig) -> None:
    small = replace(config, max_message_bytes=1024)
    with trio.fail_after(20):
        async with running_broker(small, "node-a") as a:
            big = Deliver(app="app1", message_id="m1", payload=b"x" * 2000, devices=("d",))
            with pytest.raises(ValueError, match="exceeds 1024"):
                await a.publish("node-a", big)


async def test_a_slow_consumer_cannot_grow_the_inbox(config: BrokerConfig) -> None:
    small = replace(config, inbox_size=4)
    resyncs = ResyncLog()
    with trio.fail_after(30):
        async with (
            running_broker(small, "slow", on_resubscribed=resyncs) as slow,
            running_broker(small, "sender") as sender,
        ):
            for i in range(50):
                await sender.publish("slow", Revoke(app="app1", message_id=f"m{i}"))
            await _wait_received(slow, 50)
            stats = slow.statistics()
            assert stats.inbox_queued == 4 and stats.dropped == 46
            # Lost hints mean "read the store again": the hook runs (once per burst).
            await resyncs.wait_for(OVERFLOW)
            assert resyncs.reasons.count(OVERFLOW) <= 2
            kept = [(await slow.inbox.receive()).message for _ in range(4)]
            assert kept == [Revoke(app="app1", message_id=f"m{i}") for i in range(4)]
            # Drained: hints flow again.
            await sender.publish("slow", Revoke(app="app1", message_id="after"))
            assert (await slow.inbox.receive()).message == Revoke(app="app1", message_id="after")


async def test_a_failing_resync_hook_is_retried(config: BrokerConfig) -> None:
    calls: list[str] = []
    done = trio.Event()

    async def flaky(reason: str) -> None:
        calls.append(reason)
        if len(calls) == 1:
            raise OSError("store unavailable")
        done.set()

    with trio.fail_after(20):
        async with running_broker(config, "node-a", on_resubscribed=flaky) as a:
            await done.wait()
            assert calls == [SUBSCRIBED, SUBSCRIBED]
            assert a.statistics().resync_failures == 1 and a.statistics().resyncs == 1

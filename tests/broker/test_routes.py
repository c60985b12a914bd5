"""Device routes on the machine's Redis: fencing epochs, races, refresh, bulk lookup, fan-out."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import trio

from gateway.broker import BrokerConfig, Deliver, Inbound, Kick, RedisBroker, Route
from gateway.broker.keys import Keys

from .support import raw_client, running_broker


async def _route_in_redis(config: BrokerConfig, app: str, device: str) -> bytes | None:
    async with raw_client(config.url) as client:
        return await client.get(Keys(config.prefix).device(app, device))


async def test_claim_then_newer_epoch_replaces_and_older_never_overwrites(
    config: BrokerConfig,
) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a, running_broker(config, "node-b") as b:
            first = await a.claim_route("app1", "dev1", 5)
            assert first.won and first.previous is None and first.current == Route("node-a", 5)

            again = await a.claim_route("app1", "dev1", 5)  # same connection: a refresh
            assert again.won and again.previous is None

            newer = await b.claim_route("app1", "dev1", 6)
            assert newer.won and newer.previous == Route("node-a", 5)

            older = await a.claim_route("app1", "dev1", 4)
            assert not older.won and older.current == Route("node-b", 6)
            tie = await a.claim_route("app1", "dev1", 6)  # an epoch is never given twice
            assert not tie.won and tie.current == Route("node-b", 6)

            assert await _route_in_redis(config, "app1", "dev1") == b"node-b:6"
            assert (await a.lookup_routes("app1", ["dev1"])) == {"dev1": Route("node-b", 6)}


async def test_100_concurrent_claims_leave_the_highest_epoch(config: BrokerConfig) -> None:
    epochs = list(range(1, 101))
    random.shuffle(epochs)
    results: dict[int, bool] = {}
    with trio.fail_after(30):
        async with (
            running_broker(config, "node-a") as a,
            running_broker(config, "node-b") as b,
            running_broker(config, "node-c") as c,
        ):
            brokers = [a, b, c]

            async def claim(epoch: int) -> None:
                claim = await brokers[epoch % 3].claim_route("app1", "race", epoch)
                results[epoch] = claim.won
                if claim.won:
                    assert claim.previous is None or claim.previous.epoch < epoch
                else:
                    assert claim.current.epoch > epoch

            async with trio.open_nursery() as nursery:
                for epoch in epochs:
                    nursery.start_soon(claim, epoch)

            winner = brokers[100 % 3]
            assert results[100] is True
            assert await _route_in_redis(config, "app1", "race") == f"{winner.node_id}:100".encode()
            # A node whose last claim won before a newer one learns at its next
            # refresh (or from a kick); then only the winner holds the route.
            for broker in brokers:
                lost = await broker.refresh_routes()
                assert lost in ([], [("app1", "race", Route(winner.node_id, 100))])
            held = [broker.statistics().local_routes for broker in brokers]
            assert held == [1 if broker is winner else 0 for broker in brokers]


async def test_a_stale_release_leaves_the_new_route(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a, running_broker(config, "node-b") as b:
            await a.claim_route("app1", "dev1", 1)
            await b.claim_route("app1", "dev1", 2)
            assert await a.release_route("app1", "dev1", 1) is False  # late close of the old one
            assert await _route_in_redis(config, "app1", "dev1") == b"node-b:2"
            assert await a.forget_route("app1", "dev1", Route("node-b", 1)) is False
            assert await _route_in_redis(config, "app1", "dev1") == b"node-b:2"
            assert await b.release_route("app1", "dev1", 2) is True
            assert await _route_in_redis(config, "app1", "dev1") is None
            assert b.statistics().local_routes == 0


async def test_bad_epochs_are_refused(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a:
            for bad in (-1, 2**53, True):
                with pytest.raises(ValueError, match="epoch"):
                    await a.claim_route("app1", "dev1", bad)


async def test_routes_are_refreshed_and_put_back_after_loss(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a:
            await a.claim_route("app1", "dev1", 3)
            refreshed = a.statistics().route_refreshes
            # Outlive the route TTL (3 s) several refreshes over.
            while a.statistics().route_refreshes < refreshed + 8:
                await trio.sleep(0.1)
            assert await _route_in_redis(config, "app1", "dev1") == b"node-a:3"

            async with raw_client(config.url) as client:  # as if Redis had lost it
                await client.delete([Keys(config.prefix).device("app1", "dev1")])
            assert await a.refresh_routes() == []
            assert await _route_in_redis(config, "app1", "dev1") == b"node-a:3"


async def test_refresh_finds_a_newer_route_and_kicks_locally(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a:
            await a.claim_route("app1", "dev1", 3)
            async with raw_client(config.url) as client:  # a claim whose kick got lost
                await client.set(Keys(config.prefix).device("app1", "dev1"), "node-b:4")
            assert await a.refresh_routes() == [("app1", "dev1", Route("node-b", 4))]
            inbound = await a.inbox.receive()
            assert inbound == Inbound(
                origin="node-a", channel="local", message=Kick(app="app1", device="dev1", epoch=4)
            )
            assert a.statistics().local_routes == 0


async def test_lookup_in_batches(config: BrokerConfig) -> None:
    small = replace(config, route_batch=7)
    devices = [f"dev{i}" for i in range(30)]
    with trio.fail_after(20):
        async with running_broker(small, "node-a") as a, running_broker(small, "node-b") as b:
            for i, device in enumerate(devices[:20]):
                await (a if i % 2 else b).claim_route("app1", device, i + 1)
            found = await a.lookup_routes("app1", [*devices, "dev0"])
            assert list(found) == devices
            for i, device in enumerate(devices):
                expected = Route("node-a" if i % 2 else "node-b", i + 1) if i < 20 else None
                assert found[device] == expected
            assert await a.lookup_routes("app2", devices[:3]) == dict.fromkeys(devices[:3])


async def _receive_deliver(broker: RedisBroker) -> Deliver:
    inbound = await broker.inbox.receive()
    assert inbound.channel == "node" and isinstance(inbound.message, Deliver)
    return inbound.message


async def test_deliver_groups_devices_by_node(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with (
            running_broker(config, "node-a") as a,
            running_broker(config, "node-b") as b,
            running_broker(config, "sender") as sender,
        ):
            await a.claim_route("app1", "on-a-1", 1)
            await a.claim_route("app1", "on-a-2", 1)
            await b.claim_route("app1", "on-b", 1)
            await sender.claim_route("app1", "on-sender", 1)
            async with raw_client(config.url) as client:
                await client.set(Keys(config.prefix).device("app1", "on-ghost"), "ghost:9")

            devices = ["on-a-1", "on-b", "offline", "on-sender", "on-ghost", "on-a-2"]
            fan = await sender.deliver("app1", "m1", b"frame", devices)
            assert fan.sent == {"node-a": ["on-a-1", "on-a-2"], "node-b": ["on-b"]}
            assert fan.unheard == {"ghost": ["on-ghost"]}
            assert fan.unrouted == ["offline"]
            assert fan.local == ["on-sender"]
            # A dead node's route may be removed by whoever found it unheard.
            assert await sender.forget_route("app1", "on-ghost", Route("ghost", 9))
            assert await sender.lookup_routes("app1", ["on-ghost"]) == {"on-ghost": None}

            got_a, got_b = await _receive_deliver(a), await _receive_deliver(b)
            assert got_a == Deliver(
                app="app1", message_id="m1", payload=b"frame", devices=("on-a-1", "on-a-2")
            )
            assert got_b.devices == ("on-b",)


async def test_deliver_splits_many_devices_into_bounded_messages(config: BrokerConfig) -> None:
    small = replace(config, max_message_bytes=4096)
    devices = [f"device-{i:04d}" for i in range(600)]
    with trio.fail_after(30):
        async with running_broker(small, "node-a") as a, running_broker(small, "sender") as s:
            for device in devices:
                await a.claim_route("app1", device, 1)
            fan = await s.deliver("app1", "m1", b"p" * 1000, devices)
            assert fan.sent == {"node-a": devices}
            received: list[str] = []
            while len(received) < len(devices):
                received += (await _receive_deliver(a)).devices
            assert received == devices
            assert a.statistics().received > 1

            with pytest.raises(ValueError, match="payload too large"):
                await s.deliver("app1", "m2", b"p" * 4096, devices[:1])


async def test_deliver_many_fans_a_batch_out_in_bulk_with_each_message_its_own_fan(
    config: BrokerConfig,
) -> None:
    small = replace(config, route_batch=7)  # several MGETs, pipelined in one round trip
    with trio.fail_after(30):
        async with (
            running_broker(small, "node-a") as a,
            running_broker(small, "node-b") as b,
            running_broker(small, "sender") as sender,
        ):
            for i in range(20):
                await (a if i % 2 else b).claim_route("app1", f"d{i}", 1)
            await sender.claim_route("app2", "d0", 1)  # same device name, another app
            items = [
                ("app1", f"m{i}", f"frame{i}".encode(), [f"d{i}", f"d{i + 1}", "away", f"d{i}"])
                for i in range(19)
            ]
            items.append(("app2", "m-app2", b"frame-app2", ["d0", "d1"]))
            fans = await sender.deliver_many(items)
            assert len(fans) == len(items)
            for i, fan in enumerate(fans[:19]):
                node = {0: "node-b", 1: "node-a"}
                expected: dict[str, list[str]] = {}
                for d in (i, i + 1):
                    expected.setdefault(node[d % 2], []).append(f"d{d}")
                assert fan.sent == expected and fan.unrouted == ["away"] and not fan.local
            assert fans[19].local == ["d0"] and fans[19].unrouted == ["d1"]
            assert await sender.deliver_many([]) == []

            got: dict[str, list[Deliver]] = {"node-a": [], "node-b": []}
            while sum(len(v) for v in got.values()) < 2 * 19:
                got["node-a" if len(got["node-a"]) < 19 else "node-b"].append(
                    await _receive_deliver(a if len(got["node-a"]) < 19 else b)
                )
            for node, delivered in got.items():
                assert [d.message_id for d in delivered] == [f"m{i}" for i in range(19)]
                for d in delivered:
                    i = int(d.message_id[1:])
                    assert d.payload == f"frame{i}".encode()
                    parity = 1 if node == "node-a" else 0
                    assert d.devices == tuple(f"d{x}" for x in (i, i + 1) if x % 2 == parity)

"""A node killed, Redis's pub/sub cut, PostgreSQL's backends terminated, all under load:
every accepted push reaches its device (0 lost), and only its device (0 misdelivered)."""

from __future__ import annotations

import gc
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from coredis import PureToken

from tests.broker.support import PrivateRedis, raw_client
from tests.faults.common import HTTPX_CUT_OFF
from tests.harness import wait_until
from tests.store_pg.test_serve import terminate_backends

from .fleet import NodeFleet
from .support import Nodes, Three

DEVICES = 24
PUSHERS = 4


# A push cut off by a kill leaves httpx's request-body generator unfinished; it is
# collected here (gc.collect in check), under this filter, not in a later test.
pytestmark = pytest.mark.filterwarnings(HTTPX_CUT_OFF)


async def health_names(api: str, unreachable: list[str]) -> bool:
    """/healthz names exactly these unreachable services (503), or none (200)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{api}/healthz")
    if not unreachable:
        return response.status_code == 200
    return response.status_code == 503 and response.json()["unreachable"] == unreachable


def check(fleet: NodeFleet) -> None:
    gc.collect()
    assert not fleet.missing()
    assert not fleet.misdelivered()
    assert set(fleet.codes) <= {200, 503}, dict(fleet.codes)
    assert fleet.without_retry_after == 0


async def test_kill_9_of_a_node_its_devices_reconnect_elsewhere_and_get_every_push(
    nodes: Nodes,
) -> None:
    started = nodes.start_many(3)
    fleet = NodeFleet(started, DEVICES)
    async with trio.open_nursery() as nursery:
        fleet.run_devices(nursery)
        await wait_until(lambda: len(fleet.welcomes) == 3, "devices on every node")
        nursery.start_soon(fleet.push, PUSHERS)
        await fleet.accepted_reach(100)
        fleet.dead.add(1)
        started[1].kill9()
        await fleet.accepted_reach(len(fleet.accepted) + 100)
        await fleet.stop_pushing()
        await fleet.all_delivered()
        nursery.cancel_scope.cancel()
    check(fleet)
    for survivor in (started[0], started[2]):
        assert survivor.terminate() == 0


async def test_pub_sub_cut_and_redis_restarted_under_load_lose_nothing(
    tmp_path: Path, nodes: Nodes
) -> None:
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        nodes.broker = redis.url
        started = nodes.start_many(2)
        fleet = NodeFleet(started, DEVICES)
        async with trio.open_nursery() as nursery:
            fleet.run_devices(nursery)
            nursery.start_soon(fleet.push, PUSHERS)
            for _ in range(3):
                await fleet.accepted_reach(len(fleet.accepted) + 50)
                async with raw_client(redis.url) as admin:
                    assert await admin.client_kill(type_=PureToken.PUBSUB) == 2
            await fleet.accepted_reach(len(fleet.accepted) + 50)
            redis.kill()
            await wait_until(partial(health_names, started[0].api, ["broker"]), "healthz 503")
            await fleet.accepted_reach(len(fleet.accepted) + 50)  # stored without Redis
            redis.start()
            await wait_until(partial(health_names, started[0].api, []), "healthz 200 again")
            await fleet.accepted_reach(len(fleet.accepted) + 50)
            await fleet.stop_pushing()
            await fleet.all_delivered()
            nursery.cancel_scope.cancel()
        check(fleet)
        assert "event=resync" in nodes.logs()
        for node in started:
            assert node.terminate() == 0
    finally:
        redis.close()


async def test_postgres_backends_terminated_under_load_answer_503_then_lose_nothing(
    three_nodes: Three,
) -> None:
    nodes, started = three_nodes  # they recover with no restart: the next tests use them
    fleet = NodeFleet(started, DEVICES, prefix="pgt")
    terminated = 0
    async with trio.open_nursery() as nursery:
        fleet.run_devices(nursery)
        nursery.start_soon(fleet.push, PUSHERS)
        for _ in range(4):
            await fleet.accepted_reach(len(fleet.accepted) + 40)
            terminated += terminate_backends(nodes.store)
        await fleet.accepted_reach(len(fleet.accepted) + 40)
        await fleet.stop_pushing()
        await fleet.all_delivered()
        nursery.cancel_scope.cancel()
    assert terminated >= 4
    check(fleet)

"""Node liveness on the machine's Redis: listing, clean leave, and expiry after kill -9."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import trio

from gateway.broker import BrokerConfig, LiveNode, RedisBroker
from gateway.broker.keys import Keys

from .support import raw_client, running_broker

REPO = Path(__file__).resolve().parents[2]


async def _node_ids(broker: RedisBroker) -> list[str]:
    return [node.info.node_id for node in await broker.live_nodes()]


async def test_live_nodes_list_info_and_online_devices_per_app(config: BrokerConfig) -> None:
    counts = {"app1": 3, "app:2": 1}
    with trio.fail_after(20):
        async with (
            running_broker(config, "node-a", online_counts=lambda: counts) as a,
            running_broker(config, "node-b") as b,
        ):
            nodes = await b.live_nodes("app1")
            assert [n.info.node_id for n in nodes] == ["node-a", "node-b"]
            node_a: LiveNode = nodes[0]
            assert node_a.info.ports == {"api": 8080, "ws": 8081, "tcp": 8082}
            assert node_a.info.host == "127.0.0.1" and node_a.info.pid > 0
            assert node_a.online == 3 and nodes[1].online == 0
            assert [n.online for n in await b.live_nodes("app:2")] == [1, 0]
            assert [n.online for n in await b.live_nodes()] == [None, None]

            # Counts and info change with the next heartbeat.
            counts["app1"] = 5
            a.set_info(replace(a.info, ports={"api": 1}))
            beats = a.statistics().heartbeats
            while a.statistics().heartbeats < beats + 1:
                await trio.sleep(0.05)
            node_a = (await b.live_nodes("app1"))[0]
            assert node_a.online == 5 and node_a.info.ports == {"api": 1}
        # Both left cleanly: gone at once, not after the TTL.
        async with running_broker(config, "node-c") as c:
            assert await _node_ids(c) == ["node-c"]


async def test_a_killed_node_expires(config: BrokerConfig) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.broker.node_process", config.url, config.prefix, "doomed"],
        cwd=REPO,
        stdout=subprocess.PIPE,
    )
    try:
        with trio.fail_after(30):
            assert child.stdout is not None
            line = await trio.to_thread.run_sync(child.stdout.readline)
            assert line == b"ready\n"
            async with running_broker(config, "watcher") as watcher, raw_client(config.url) as raw:
                assert "doomed" in await _node_ids(watcher)
                ttl_ms = await raw.pttl(Keys(config.prefix).node("doomed"))
                assert 0 < ttl_ms <= config.node_ttl * 1000  # it lives only by its heartbeats
                child.kill()
                child.wait()
                while "doomed" in await _node_ids(watcher):
                    await trio.sleep(0.1)
                assert await raw.zscore(Keys(config.prefix).nodes, "doomed") is None  # trimmed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()

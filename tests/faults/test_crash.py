"""kill -9 under full load, several times: nothing accepted is lost, nothing acked comes back."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import trio

from tests.harness import ServerProcess, start_server_process, wait_until

from .common import (
    HTTPX_CUT_OFF,
    assert_clean_log,
    integrity_ok,
    point_proxies,
    stored_ids,
)
from .fleet import Fleet
from .proxy import FaultProxy

ITERATIONS = 5
DEVICES = 24
PUSHERS = 6


# A push cut off by the kill leaves httpx's request-body generator unfinished.
@pytest.mark.filterwarnings(HTTPX_CUT_OFF)
async def test_kill_9_at_random_points_under_load_loses_nothing(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    note = f"(seed {seed})"
    db = tmp_path / "crash.db"
    proxies = {"ws": FaultProxy("127.0.0.1", 1), "tcp": FaultProxy("127.0.0.1", 1)}
    fleet = Fleet(proxies, size=DEVICES, rng=random.Random(seed))
    acked_at_kill: list[set[str]] = []

    async def accepted_reach(count: int) -> None:
        await wait_until(lambda: len(fleet.accepted) >= count, f"{count} pushes accepted")

    per_iteration: list[tuple[int, int]] = []  # (accepted so far, acked at the kill)
    async with trio.open_nursery() as nursery:
        for proxy in proxies.values():
            await nursery.start(proxy.run)
        await fleet.run_devices(nursery)

        for generation in range(ITERATIONS):
            server = start_server_process(db)
            server_processes.append(server)
            fleet.generation, fleet.api = generation, server.api
            point_proxies(proxies, server)
            async with trio.open_nursery() as load:
                load.start_soon(fleet.push_until_stopped, PUSHERS)
                # Random kill point, counted in accepted pushes (not seconds, which
                # a busy machine stretches): sometimes while devices are still
                # reconnecting and replaying, sometimes in steady state.
                await accepted_reach(len(fleet.accepted) + rng.randint(20, 300))
                server.kill9()
                fleet.pushing = False
            assert integrity_ok(db), f"integrity_check failed after kill {generation} {note}"
            stored, acked = stored_ids(db)
            lost = set(fleet.accepted) - stored
            assert not lost, f"{len(lost)} accepted pushes not in the file after kill {note}"
            acked_at_kill.append(acked)
            per_iteration.append((len(fleet.accepted), len(acked)))

        # One more run, left alone: every accepted push reaches its device.
        server = start_server_process(db)
        server_processes.append(server)
        fleet.generation, fleet.api = ITERATIONS, server.api
        point_proxies(proxies, server)
        await wait_until(
            lambda: not fleet.missing(), "every accepted push delivered", timeout=60, poll=0.1
        )
        nursery.cancel_scope.cancel()
    assert server.terminate() == 0
    assert_clean_log(server)

    frames = sum(len(v) for v in fleet.received.values())
    print(f"kill -9 x{ITERATIONS} {note}: (accepted, acked) {per_iteration}; {frames} push frames")
    assert len(fleet.accepted) > ITERATIONS * 20, f"too little load: {per_iteration} {note}"
    assert all(acked for acked in acked_at_kill[1:]), f"no acks recorded: {per_iteration}"
    owner = fleet.accepted
    for device, log in fleet.received.items():
        for message_id, generation in log:
            # Never another device's message.
            assert owner.get(message_id, device) == device, (message_id, device, note)
            # Acked (committed) before a kill: never sent again by a later process.
            if generation > 0:
                assert message_id not in acked_at_kill[generation - 1], (
                    f"{message_id} acked before kill {generation - 1} was redelivered"
                    f" by process {generation} {note}"
                )

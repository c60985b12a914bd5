"""SIGTERM under load: devices get `bye shutdown`, exit 0 in bounded time, nothing accepted lost."""

from __future__ import annotations

import random
import signal
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

DEVICES = 20
GRACE = 10.0  # the default shutdown grace period


@pytest.mark.filterwarnings(HTTPX_CUT_OFF)
async def test_sigterm_under_load_drains_and_loses_nothing(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "drain.db"
    proxies = {"ws": FaultProxy("127.0.0.1", 1), "tcp": FaultProxy("127.0.0.1", 1)}
    fleet = Fleet(proxies, size=DEVICES, rng=random.Random(7))
    async with trio.open_nursery() as nursery:
        for proxy in proxies.values():
            await nursery.start(proxy.run)
        server = start_server_process(db)
        server_processes.append(server)
        fleet.api = server.api
        point_proxies(proxies, server)
        await fleet.run_devices(nursery)
        await wait_until(lambda: fleet.welcomes >= DEVICES, "every device welcomed")

        async with trio.open_nursery() as load:
            load.start_soon(fleet.push_until_stopped, 6)
            # Pushes and deliveries in flight: the signal comes after 60 accepted pushes.
            await wait_until(lambda: len(fleet.accepted) >= 60, "60 pushes accepted")
            accepted_before = len(fleet.accepted)
            server.process.send_signal(signal.SIGTERM)
            signalled = trio.current_time()
            await wait_until(
                lambda: server.process.poll() is not None, "the gateway to exit", timeout=GRACE + 10
            )
            stopped_after = trio.current_time() - signalled
            fleet.pushing = False
        assert server.process.returncode == 0
        server.close()
        assert "event=shutdown_started" in server.log()
        assert_clean_log(server)
        assert accepted_before > 50, "too little load to mean anything"
        # Every device connected at the signal was told why it was dropped.
        told = [d for d in fleet.devices if "shutdown" in fleet.byes[d]]
        assert len(told) == DEVICES, sorted(set(fleet.devices) - set(told))

        # Everything answered 2xx, even during the drain, is in the file...
        assert integrity_ok(db)
        stored, _ = stored_ids(db)
        assert not set(fleet.accepted) - stored
        # ...and reaches its device from the next process.
        server = start_server_process(db)
        server_processes.append(server)
        fleet.generation, fleet.api = 1, server.api
        point_proxies(proxies, server)
        await wait_until(
            lambda: not fleet.missing(), "every accepted push delivered", timeout=60, poll=0.1
        )
        nursery.cancel_scope.cancel()
    assert server.terminate() == 0
    assert stopped_after < GRACE + 3, f"the drain took {stopped_after:.1f} s"
    assert_clean_log(server)

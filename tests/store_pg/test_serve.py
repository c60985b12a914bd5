"""`pushgate serve` on PostgreSQL under load, while the database misbehaves.

Real processes, real sockets, the machine's PostgreSQL: devices of a fleet
(tests/faults/fleet.py) connect and ack, pushers push. Whatever happens to
the database, a push is answered 200 (then it is stored, and delivered) or
503 with Retry-After (then the pusher may retry); nothing answered 200 is
ever lost.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
import trio

from tests.faults.common import HTTPX_CUT_OFF, point_proxies
from tests.faults.fleet import Fleet
from tests.faults.proxy import FaultProxy, Mode
from tests.harness import APP, ServerProcess, start_server_process, wait_until
from tests.store_pg.database import server_url
from tests.store_pg.test_postgres import free_port, with_port

DEVICES = 16
PUSHERS = 4


@dataclass
class Pushers:
    """Push until stopped; every answer's status counted, every 200 given to the fleet."""

    fleet: Fleet
    codes: Counter[int] = field(default_factory=Counter)
    without_retry_after: int = 0
    running: bool = True
    n: int = 0
    stopped: trio.Event = field(default_factory=trio.Event)

    async def run(self, api: str, workers: int = PUSHERS) -> None:
        headers = {"authorization": f"Bearer {APP.api_key}"}
        try:
            async with (
                httpx.AsyncClient(base_url=api, headers=headers, timeout=20.0) as client,
                trio.open_nursery() as nursery,
            ):
                for _ in range(workers):
                    nursery.start_soon(self._push, client)
        finally:
            self.stopped.set()

    async def stop(self) -> None:
        """Let requests in flight finish: one cut off mid-body leaves a generator open."""
        self.running = False
        with trio.fail_after(60):
            await self.stopped.wait()

    async def _push(self, client: httpx.AsyncClient) -> None:
        devices = self.fleet.devices
        while self.running:
            self.n += 1
            device = self.fleet.rng.choice(devices)
            body = {"delivery_type": "android", "target_id": device, "title": f"p{self.n}",
                    "content": "pg fault test", "msg_key": f"p{self.n}"}  # fmt: skip
            try:
                response = await client.post("/v1/push/simple", json=body)
            except httpx.TransportError:
                return  # the gateway is gone (killed)
            self.codes[response.status_code] += 1
            if response.status_code == 200:
                self.fleet.accepted[str(response.json()["message_id"])] = device
            elif response.status_code == 503 and "retry-after" not in response.headers:
                self.without_retry_after += 1

    def check(self) -> None:
        assert set(self.codes) <= {200, 503}, self.codes
        assert self.without_retry_after == 0


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def terminate_backends(url: str) -> int:
    """pg_terminate_backend of every connection of pushgate to the database of `url`."""
    with psycopg.connect(server_url(), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 'pushgate-%%'",
            (database_of(url),),
        ).fetchone()
    return int(row[0]) if row else 0


def stored_message_ids(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]) for r in conn.execute("SELECT message_id FROM messages").fetchall()}


def proxies() -> dict[str, FaultProxy]:
    return {"ws": FaultProxy("127.0.0.1", 1), "tcp": FaultProxy("127.0.0.1", 1)}


async def accepted_reach(fleet: Fleet, count: int) -> None:
    await wait_until(lambda: len(fleet.accepted) >= count, f"{count} pushes accepted", timeout=60)


async def all_delivered(fleet: Fleet) -> None:
    await wait_until(lambda: not fleet.missing(), "every accepted push delivered", timeout=60)


async def test_backends_terminated_under_load_lose_nothing(
    tmp_path: Path, pg_url: str, server_processes: list[ServerProcess]
) -> None:
    front = proxies()
    fleet = Fleet(front, size=DEVICES)
    pushers = Pushers(fleet)
    server = start_server_process(tmp_path / "pg", store=pg_url)
    server_processes.append(server)
    fleet.api = server.api
    async with trio.open_nursery() as nursery:
        for proxy in front.values():
            await nursery.start(proxy.run)
        point_proxies(front, server)
        await fleet.run_devices(nursery)
        nursery.start_soon(pushers.run, server.api)
        terminated = 0
        for _ in range(5):
            await accepted_reach(fleet, len(fleet.accepted) + 40)
            terminated += terminate_backends(pg_url)
        await accepted_reach(fleet, len(fleet.accepted) + 40)
        await pushers.stop()
        await all_delivered(fleet)
        nursery.cancel_scope.cancel()
    assert terminated >= 5
    pushers.check()
    assert set(fleet.accepted) <= stored_message_ids(pg_url)
    assert "store_connection_lost" in server.log()
    assert server.terminate() == 0


async def test_the_database_unreachable_under_load_then_back(
    tmp_path: Path, pg_url: str, server_processes: list[ServerProcess]
) -> None:
    front = proxies()
    upstream = urlsplit(server_url())
    behind = FaultProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432)
    fleet = Fleet(front, size=DEVICES)
    pushers = Pushers(fleet)
    async with trio.open_nursery() as nursery:
        for proxy in (*front.values(), behind):
            await nursery.start(proxy.run)
        # In a thread: the proxy it connects through runs on this Trio loop.
        server = await trio.to_thread.run_sync(
            partial(start_server_process, tmp_path / "pg", store=with_port(pg_url, behind.port))
        )
        server_processes.append(server)
        fleet.api = server.api
        point_proxies(front, server)
        await fleet.run_devices(nursery)
        nursery.start_soon(pushers.run, server.api)
        await accepted_reach(fleet, 40)
        behind.set_mode(Mode.RESET)  # connections reset, new ones refused
        await wait_until(lambda: pushers.codes[503] >= 20, "pushes answered 503")
        behind.set_mode(Mode.PASS)
        await accepted_reach(fleet, len(fleet.accepted) + 40)  # back, with no restart
        await pushers.stop()
        await all_delivered(fleet)
        nursery.cancel_scope.cancel()
    pushers.check()
    assert set(fleet.accepted) <= stored_message_ids(pg_url)
    assert server.terminate() == 0


# A push cut off by the kill leaves httpx's request-body generator unfinished.
@pytest.mark.filterwarnings(HTTPX_CUT_OFF)
async def test_kill_9_under_load_loses_no_accepted_push(
    tmp_path: Path, pg_url: str, server_processes: list[ServerProcess]
) -> None:
    rng = random.Random()
    front = proxies()
    fleet = Fleet(front, size=DEVICES, rng=rng)
    async with trio.open_nursery() as nursery:
        for proxy in front.values():
            await nursery.start(proxy.run)
        await fleet.run_devices(nursery)
        for generation in range(3):
            server = start_server_process(tmp_path / "pg", store=pg_url)
            server_processes.append(server)
            fleet.generation, fleet.api = generation, server.api
            point_proxies(front, server)
            pushers = Pushers(fleet)
            async with trio.open_nursery() as load:
                load.start_soon(pushers.run, server.api)
                await accepted_reach(fleet, len(fleet.accepted) + rng.randint(20, 200))
                server.kill9()
                pushers.running = False
            lost = set(fleet.accepted) - stored_message_ids(pg_url)
            assert not lost, f"{len(lost)} accepted pushes not stored after kill {generation}"
        server = start_server_process(tmp_path / "pg", store=pg_url)
        server_processes.append(server)
        fleet.generation, fleet.api = 3, server.api
        point_proxies(front, server)
        await all_delivered(fleet)
        nursery.cancel_scope.cancel()
    assert server.terminate() == 0


def serve_error(location: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "gateway.cli", "serve", "--db", location]
    args += ["--api-port", "0", "--ws-port", "0", "--tcp-port", "0"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_serve_with_a_refused_database_exits_with_one_clear_line() -> None:
    done = serve_error(with_port(server_url(), free_port()))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        line for line in done.stderr.strip().splitlines() if line.startswith("Error:")
    ], done.stderr
    assert "Error: cannot open the store: cannot connect to PostgreSQL at" in done.stderr
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_a_schema_newer_than_the_code_exits_with_one_clear_line(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE pushgate_schema (one boolean PRIMARY KEY, version integer)")
        conn.execute("INSERT INTO pushgate_schema VALUES (true, 42)")
    done = serve_error(pg_url)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Error: cannot open the store: the PostgreSQL schema is version 42" in done.stderr


def test_serve_with_an_unknown_store_scheme_exits_with_one_clear_line() -> None:
    done = serve_error("mysql://root@127.0.0.1/test")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        "Error: cannot open the store: store mysql://…: not a store pushgate knows" in done.stderr
    )


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user}:{password}@{host}").geturl()


async def test_a_password_in_the_url_is_never_shown(
    tmp_path: Path, pg_url: str, server_processes: list[ServerProcess]
) -> None:
    url = with_password(pg_url, "s3cret-pw")  # trust auth: accepted, and ignored
    server = start_server_process(tmp_path / "pg", store=url)
    server_processes.append(server)
    assert server.terminate() == 0
    assert "event=ready" in server.log() and "s3cret-pw" not in server.log()
    args = [sys.executable, "-m", "gateway.cli", "app", "create", "app1", "--db", url]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "app 'app1' already exists in postgres@" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout

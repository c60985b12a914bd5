"""`serve --workers 2`: two node processes on the same ports, one supervising command."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import trio

from tests.harness import api_client, connect_device, push_simple, wait_until

from .support import Nodes, receive_push


async def _worker_pids(api: httpx.AsyncClient, api_url: str) -> set[int] | None:
    """The two workers' PIDs once both are listed with their ports."""
    try:
        response = await api.get("/v1/nodes")
    except httpx.TransportError:
        return None  # a kept-alive connection to a worker just killed
    assert response.status_code == 200, response.text
    listed = response.json()["nodes"]
    if not all(n["ports"] for n in listed):
        return None  # a worker still starting: listed before its ports are bound
    assert {n["ports"]["api"] for n in listed} == {int(api_url.rsplit(":", 1)[1])}
    pids = {int(n["pid"]) for n in listed}
    return pids if len(pids) == 2 else None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


async def test_two_workers_serve_one_port_and_a_killed_worker_is_started_again(
    nodes: Nodes,
) -> None:
    supervisor = nodes.start("--workers", "2")
    async with api_client(supervisor.api) as api:

        async def listed() -> set[int] | None:
            return await _worker_pids(api, supervisor.api)

        first = await wait_until(listed, "two workers listed")
        # Devices on either worker get what is pushed through either.
        conns = [(await connect_device(supervisor.ws_url, f"w-{i}"))[0] for i in range(8)]
        for i, conn in enumerate(conns):
            answer = await push_simple(api, f"w-{i}")
            assert (await receive_push(conn)).id == answer["message_id"]
        killed = sorted(first)[0]
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> set[int] | None:
            pids = await listed()
            return pids if pids is not None and killed not in pids else None

        second = await wait_until(replaced, "the killed worker started again", timeout=60)
        assert len(second - first) == 1
    for conn in conns:
        await conn.aclose()
    assert supervisor.terminate(timeout=60) == 0
    log = supervisor.log()
    assert "event=worker_died worker=" in log and "exit_code=-9" in log
    assert log.count("event=worker_started") == 3


# Trio starts a process from a worker thread, and its idle threads exit after 10 s.
THREAD_IDLE_EXIT = 10.0


async def test_workers_outlive_the_thread_that_started_them_and_stop_with_the_supervisor(
    nodes: Nodes,
) -> None:
    supervisor = nodes.start("--workers", "2")
    async with api_client(supervisor.api) as api:

        async def listed() -> set[int] | None:
            return await _worker_pids(api, supervisor.api)

        pids = await wait_until(listed, "two workers listed")
        # A worker tied to its starting thread's life (prctl PDEATHSIG) got SIGTERM here.
        await trio.sleep(THREAD_IDLE_EXIT + 2.0)
        assert all(_running(pid) for pid in pids)
        assert await _worker_pids(api, supervisor.api) == pids
    assert "event=worker_died" not in supervisor.log()
    supervisor.kill9()  # no SIGTERM passed on: the workers must notice by themselves
    await wait_until(
        lambda: not any(_running(pid) for pid in pids), "workers gone after their supervisor"
    )
    assert supervisor.log().count("event=supervisor_gone") == 2

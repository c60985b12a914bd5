"""`serve --workers 2`: two node processes on the same ports, one supervising command."""

from __future__ import annotations

import os
import signal

import httpx

from tests.harness import api_client, connect_device, push_simple, wait_until

from .support import Nodes, receive_push


async def test_two_workers_serve_one_port_and_a_killed_worker_is_started_again(
    nodes: Nodes,
) -> None:
    supervisor = nodes.start("--workers", "2")
    async with api_client(supervisor.api) as api:

        async def worker_pids() -> set[int] | None:
            try:
                response = await api.get("/v1/nodes")
            except httpx.TransportError:
                return None  # a kept-alive connection to the worker just killed
            assert response.status_code == 200, response.text
            listed = response.json()["nodes"]
            if not all(n["ports"] for n in listed):
                return None  # a worker still starting: listed before its ports are bound
            assert {n["ports"]["api"] for n in listed} == {int(supervisor.api.rsplit(":", 1)[1])}
            pids = {int(n["pid"]) for n in listed}
            return pids if len(pids) == 2 else None

        first = await wait_until(worker_pids, "two workers listed")
        # Devices on either worker get what is pushed through either.
        conns = [(await connect_device(supervisor.ws_url, f"w-{i}"))[0] for i in range(8)]
        for i, conn in enumerate(conns):
            answer = await push_simple(api, f"w-{i}")
            assert (await receive_push(conn)).id == answer["message_id"]
        killed = sorted(first)[0]
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> set[int] | None:
            pids = await worker_pids()
            return pids if pids is not None and killed not in pids else None

        second = await wait_until(replaced, "the killed worker started again", timeout=60)
        assert len(second - first) == 1
    for conn in conns:
        await conn.aclose()
    assert supervisor.terminate(timeout=60) == 0
    log = supervisor.log()
    assert "event=worker_died worker=" in log and "exit_code=-9" in log
    assert log.count("event=worker_started") == 3

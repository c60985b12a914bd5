"""`pushgate sim` spread over several nodes: its oracle finds nothing lost or misdelivered,
also when one node of three is killed (kill -9) in the middle of a run of flaky devices."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import trio

from tests.harness import APP, ServerProcess, api_client, wait_until

from .support import Nodes, Three


def sim_command(nodes: list[ServerProcess], report: Path, *options: str) -> list[str]:
    command = [sys.executable, "-m", "gateway.cli", "sim", "--api", nodes[0].api]
    command += ["--ws", ",".join(n.ws for n in nodes), "--app", APP.app_id]
    command += ["--key", APP.api_key, "--secret", APP.secret, "--quiet", "--json", str(report)]
    return command + list(options)


def clean(result: dict[str, Any]) -> dict[str, Any]:
    """The verdict, once checked clean: 0 lost, 0 misdelivered, nothing late."""
    verdict: dict[str, Any] = result["verdict"]
    assert result["ok"] is True, verdict["failures"]
    assert (verdict["lost"], verdict["misdelivered"], verdict["late"]) == (0, 0, 0)
    return verdict


async def test_the_simulator_spreads_devices_over_nodes_and_its_oracle_passes(
    three_nodes: Three, tmp_path: Path
) -> None:
    _, nodes = three_nodes
    report = tmp_path / "sim.json"
    command = sim_command(nodes, report, "--devices", "30", "--messages", "150")
    command += ["--behaviour", "steady=2,flaky=1", "--flaky-uptime", "2"]
    command += ["--device-prefix", "sim-nodes-"]
    with trio.fail_after(120):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    result = json.loads(report.read_text())
    clean(result)
    assert result["config"]["url"].split(",") == [n.ws_url for n in nodes]


async def test_kill_9_of_one_node_of_three_during_a_flaky_sim_run_loses_nothing(
    nodes: Nodes, tmp_path: Path
) -> None:
    started = nodes.start_many(3)
    victim = started[1]  # the sim pushes through node 0's API
    report = tmp_path / "sim.json"
    command = sim_command(started, report, "--devices", "30", "--behaviour", "flaky")
    command += ["--flaky-uptime", "2", "--rate", "30", "--duration", "10"]
    command += ["--drain-timeout", "40", "--device-prefix", "sim-kill-"]
    async with trio.open_nursery() as nursery, api_client(started[0].api) as api:

        async def victim_online_and_pushes_flowing() -> bool:
            nodes_answer = (await api.get("/v1/nodes")).json()["nodes"]
            online = {n["ports"].get("api"): n["online"] for n in nodes_answer}
            pushes = (await api.get("/v1/stats")).json()["pushes_today"]
            return online.get(int(victim.api.rsplit(":", 1)[1]), 0) > 0 and pushes >= 60

        run = trio.Event()
        outcome: dict[str, Any] = {}

        async def simulate() -> None:
            outcome["done"] = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False
            )
            run.set()

        nursery.start_soon(simulate)
        await wait_until(
            victim_online_and_pushes_flowing, "pushing, devices on node 1", timeout=60, poll=0.2
        )
        victim.kill9()
        with trio.fail_after(120):
            await run.wait()
    done = outcome["done"]
    output = done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    assert done.returncode == 0, output + nodes.logs()
    result = json.loads(report.read_text())
    verdict = clean(result)
    assert verdict["delivered"] == verdict["expected_deliveries"] > 0
    assert result["fleet"]["away"] > 0  # devices of the dead node went on elsewhere
    for survivor in (started[0], started[2]):
        assert survivor.terminate() == 0

"""`pushgate sim` spread over several nodes: its oracle finds nothing lost or misdelivered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import trio

from tests.harness import APP

from .support import Three


async def test_the_simulator_spreads_devices_over_nodes_and_its_oracle_passes(
    three_nodes: Three, tmp_path: Path
) -> None:
    _, nodes = three_nodes
    report = tmp_path / "sim.json"
    command = [sys.executable, "-m", "gateway.cli", "sim", "--api", nodes[0].api]
    command += ["--ws", ",".join(n.ws for n in nodes), "--app", APP.app_id]
    command += ["--key", APP.api_key, "--secret", APP.secret, "--devices", "30"]
    command += ["--messages", "150", "--behaviour", "steady=2,flaky=1", "--flaky-uptime", "2"]
    command += ["--device-prefix", "sim-nodes-", "--quiet", "--json", str(report)]
    with trio.fail_after(120):
        done = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]
    result = json.loads(report.read_text())
    assert result["ok"] is True
    assert result["config"]["url"].split(",") == [n.ws_url for n in nodes]

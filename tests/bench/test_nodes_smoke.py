"""`python -m bench --nodes 1,2` at tiny scale: pushgate as 1 and 2 nodes on the machine's
PostgreSQL + Redis, every phase completes, one table and the scale-out table.

Nothing here is timed; it checks the benchmark of many nodes works end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.broker.support import MACHINE_REDIS
from tests.store_pg.database import server_url

REPO = Path(__file__).resolve().parents[2]
SIDES = ("pushgate-tcp-pg-1node", "pushgate-tcp-pg-2nodes")
DEVICES = 60


@pytest.mark.timeout(600)
def test_bench_runs_one_and_two_nodes_and_prints_the_scale_out_table(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    args = ["--devices", str(DEVICES), "--messages", "600", "--rate", "500", "--simple-calls"]
    args += ["100", "--transport", "tcp", "--sides", "pushgate", "--store", "none"]
    args += ["--nodes", "1,2", "--pg", server_url(), "--broker", MACHINE_REDIS]
    args += ["--json", str(results), "--logs", str(tmp_path / "logs")]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split()[1:] == list(SIDES), header
    scale = lines[lines.index(next(x for x in lines if x.startswith("scale-out"))) :]
    assert scale[1].split()[:5] == ["transport", "phase", "sqlite", "node", "pg+redis"]
    assert any(x.startswith("tcp        online max") for x in scale), scale

    document = json.loads(results.read_text())
    assert document["config"]["nodes"] == [1, 2]
    for side, nodes in zip(SIDES, (1, 2), strict=True):
        result = document["results"][side]
        per_node = result["idle"]["devices_per_node"]
        assert len(per_node) == nodes and sum(per_node) == DEVICES, per_node
        assert result["processes"]["server_processes"] == nodes + 1  # and the supervisor
        for phase in ("online_rate", "online_max", "simple", "offline"):
            measured = result[phase]
            assert measured["received"] == measured["messages"] > 0, (side, phase)
            assert measured["duplicates"] == 0 and not measured["errors"], (side, phase)
            assert measured["usage"]["engines_cpu_seconds"] > 0, (side, phase)
    rows = {row["phase"]: row for row in document["scale_out"]}
    assert rows["online max"]["two_over_one"] > 0 and rows["online max"]["sqlite"] is None

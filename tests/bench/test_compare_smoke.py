"""`python -m bench` at tiny scale: every server runs, one table, one JSON file.

This checks the benchmark works end to end (its numbers at this scale mean
nothing; nothing here is timed). It needs Mosquitto: the benchmark installs
Debian's package itself when /usr/sbin/mosquitto is missing, and fails with
the reason if it cannot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIDES = ("pushgate-ws", "pushgate-tcp", "mosquitto")
PHASES = ("online_rate", "online_max", "offline")
BOTTLENECKS = {"server", "GENERATOR", "machine", "machine (shared)", "none"}


@pytest.mark.timeout(600)
def test_bench_prints_one_table_and_json_with_every_side(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    args = ["--devices", "50", "--messages", "500", "--rate", "500", "--transport", "ws,tcp"]
    args += ["--json", str(results), "--logs", str(tmp_path / "logs")]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split()[1:4] == list(SIDES), header
    assert "pushgate-ws ÷ mosquitto" in header and "pushgate-tcp ÷ mosquitto" in header

    def cells(row: str) -> list[str]:
        line = next((x for x in lines if x.startswith(row)), None)
        assert line is not None, f"no row {row!r} in\n{done.stdout}"
        return line[len(row) :].split()

    for row in (
        "server RSS per idle connection (bytes)",
        "connects per second",
        "online @500/s: delivered+acked msg/s",
        "online @500/s: latency p99 (ms)",
        "online max: server CPU µs/msg",
        "online max: device workers CPU µs/msg",
        "online max: publisher CPU µs/msg",
        "offline-first: drain delivered+acked msg/s",
    ):
        values = cells(row)
        assert len(values) == 5, (row, values)  # three sides, two ratios
        assert "—" not in values[:3], (row, values)  # a number for each side
    # The simple-push phase is pushgate's alone: Mosquitto has no batch API.
    simple = cells("simple push: server CPU µs/call")
    assert simple[2] == "—" and "—" not in simple[:2], simple
    assert cells("online max: saturated")[:3], "a bottleneck for each side"

    document = json.loads(results.read_text())
    assert set(document["results"]) == set(SIDES)
    assert document["machine"]["nproc"] >= 1 and document["machine"]["kernel"]
    for name in ("python", "trio", "pushgate", "mosquitto", "uvloop"):
        assert document["versions"][name], name
    assert document["config"]["transports"] == ["ws", "tcp"]
    for side in SIDES:
        result = document["results"][side]
        assert result["idle"]["connections"] == 50
        assert result["idle"]["connect_usage"]["bottleneck"] in BOTTLENECKS
        phases = PHASES + (("simple",) if side.startswith("pushgate") else ())
        for phase in phases:
            measured = result[phase]
            assert measured["received"] == measured["messages"] > 0, (side, phase)
            assert measured["duplicates"] == 0 and not measured["errors"], (side, phase)
            used = measured["usage"]
            for key in ("server_cpu_seconds", "device_workers_cpu_us_per_msg"):
                assert used[key] >= 0, (side, phase, key)
            assert used["bottleneck"] in BOTTLENECKS
        assert result["processes"]["server_processes"] == 1
        assert result["processes"]["device_worker_processes"] >= 1
    assert "simple" not in document["results"]["mosquitto"]
    assert document["results"]["pushgate-ws"]["simple"]["publisher"]["api"] == "simple"
    for side in ("pushgate-ws", "pushgate-tcp"):
        assert "online_max_cpu_us_per_msg" in document["ratios"][side]

    rendered = subprocess.run(
        [sys.executable, "-m", "bench.report", "--markdown", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    table = rendered.stdout.splitlines()
    assert "| metric | pushgate-ws | pushgate-tcp | mosquitto |" in "\n".join(table)
    assert any(line.startswith("| online max: saturated |") for line in table)

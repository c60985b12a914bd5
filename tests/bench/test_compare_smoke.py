"""`python -m bench` at tiny scale: both servers run, one table, one JSON file.

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
SIDES = ("pushgate", "mosquitto")


@pytest.mark.timeout(600)
def test_bench_prints_one_table_and_json_with_both_sides(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    args = ["--devices", "50", "--messages", "500", "--rate", "500", "--json", str(results)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--logs", str(tmp_path / "logs")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output

    header = next(line for line in done.stdout.splitlines() if line.startswith("metric"))
    assert header.split()[1:3] == list(SIDES), header
    assert "pushgate ÷ mosquitto" in header
    for row in (
        "server RSS per idle connection (bytes)",
        "online @500/s: delivered+acked msg/s",
        "online @500/s: latency p99 (ms)",
        "online max: server CPU µs/msg",
        "offline-first: drain delivered+acked msg/s",
    ):
        line = next((x for x in done.stdout.splitlines() if x.startswith(row)), None)
        assert line is not None, f"no row {row!r} in\n{done.stdout}"
        pushgate, mosquitto, _ratio = line[len(row) :].split()
        assert "—" not in (pushgate, mosquitto), line  # a number for each side

    document = json.loads(results.read_text())
    assert set(document["results"]) == set(SIDES)
    assert document["machine"]["nproc"] >= 1 and document["machine"]["kernel"]
    for name in ("python", "trio", "pushgate", "mosquitto", "paho-mqtt"):
        assert document["versions"][name], name
    for side in SIDES:
        result = document["results"][side]
        assert result["idle"]["connections"] == 50
        for phase in ("online_rate", "online_max", "offline"):
            assert result[phase]["received"] == result[phase]["messages"] > 0
            assert result[phase]["server_cpu_us_per_msg"] >= 0
        assert result["processes"]["server_processes"] == 1
        assert result["processes"]["device_worker_processes"] >= 1
    assert "online_max_cpu_us_per_msg" in document["ratios"]

"""Whole simulator runs: the library API and `pushgate sim`, against a gateway process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from click.testing import CliRunner

from client_sim import sim_cli
from client_sim.behaviours import BehaviourParams
from client_sim.driver import DriverStats
from client_sim.fleet import FleetCounts
from client_sim.oracle import AcceptedPush, Oracle
from client_sim.plan import SimConfig, apportion, plan_devices, push_jobs
from client_sim.runner import SimResult, run_sim
from client_sim.spawn import spawned_gateway
from tests.harness import wait_until

# A whole run's safety net: generous, since a run on a busy machine is slower.
SLOW_RUN = 240.0


def config_for(gw, **overrides) -> SimConfig:
    return SimConfig(
        api=gw.api,
        url=gw.ws_url,
        app=gw.app,
        api_key=gw.api_key,
        secret=gw.secret,
        **overrides,
    )


async def test_a_small_flaky_fleet_loses_nothing(tmp_path: Path):
    """A hundred flaky devices (online 2 s on average, then cut off), a thousand
    messages at 200/s: pushing lasts 5 s at least on any machine, so every device
    drops a few times meanwhile. Zero losses. A busy machine only makes it slower:
    the drain waits as long as deliveries take (the deadlines are safety nets)."""
    with trio.fail_after(SLOW_RUN):
        async with spawned_gateway(directory=tmp_path) as gw:
            config = config_for(
                gw,
                devices=100,
                behaviours=(("flaky", 1.0),),
                params=BehaviourParams(flaky_uptime=2.0),
                messages=1000,
                rate=200,
                drain_timeout=SLOW_RUN,
            )
            result = await run_sim(config)
    verdict = result.verdict
    assert verdict.ok, (verdict.failures, verdict.examples, result.warnings)
    assert verdict.messages == 1000 and verdict.delivered == 1000
    assert verdict.lost == verdict.misdelivered == verdict.late == 0
    assert result.counts.disconnects > 100  # they really were flaky (about 250 expected)
    assert result.counts.ever_connected == 100
    assert result.driver.messages == 1000 and not result.driver.rejected
    assert result.push_rate > 0 and result.delivery_rate > 0


async def test_two_worker_processes_on_two_source_addresses(tmp_path: Path):
    with trio.fail_after(SLOW_RUN):
        async with spawned_gateway(directory=tmp_path) as gw:
            config = config_for(
                gw,
                devices=60,
                behaviours=(("storm", 1.0), ("never-ack", 1.0), ("late", 1.0)),
                storm_every=0.5,
                params=BehaviourParams(late_window=1.0),
                push_type="multiple",
                batch_size=25,
                messages=600,
                rate=600,
                processes=2,
                source_addresses=("127.0.0.2", "127.0.0.3"),
                drain_timeout=SLOW_RUN,
            )
            seen = []
            result = await run_sim(config, on_progress=seen.append, progress_interval=0.1)
    assert result.processes == 2
    assert result.ok, (result.verdict.failures, result.warnings)
    assert result.verdict.delivered == 600
    assert result.counts.storms >= 1 and result.counts.ever_connected == 60
    assert result.verdict.redeliveries > 0  # never-ack devices, dropped by storms
    assert seen[-1].phase == "done" and seen[-1].delivered == 600
    assert {p.phase for p in seen} >= {"connecting", "pushing", "done"}


def test_pushgate_sim_end_to_end(tmp_path: Path):
    """The CLI with --spawn-gateway: user pushes to self-binding and API-bound devices."""
    report_path, plot_path = tmp_path / "report.json", tmp_path / "latency.png"
    args = [sys.executable, "-m", "gateway.cli", "sim", "--spawn-gateway", "--quiet"]
    args += ["--devices", "40", "--behaviour", "bind", "--behaviour", "steady=1"]
    args += ["--push-type", "user", "--messages", "200", "--transport", "tcp"]
    args += ["--json", str(report_path), "--plot", str(plot_path)]
    args += ["--drain-timeout", str(SLOW_RUN)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=SLOW_RUN, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout
    assert "Delivery oracle" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["ok"] is True
    assert report["verdict"]["messages"] == 200
    assert report["verdict"]["delivered"] == 400  # two devices per user
    assert report["config"]["url"].startswith("tcp://")
    assert "secret" not in report["config"] and "api_key" not in report["config"]
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def failing_result() -> SimResult:
    oracle = Oracle(track_presence=False)
    oracle.accept(
        AcceptedPush(
            message_id="m1", expected=frozenset({"d1"}), pushed_ms=0, accepted_ms=1, expires_ms=9
        )
    )
    config = SimConfig(
        api="http://x:1", url="ws://x:2/v1/connect", app="a", api_key="k", secret="s"
    )
    return SimResult(
        config=config,
        prefix="p-",
        processes=1,
        started_ms=0,
        ended_ms=10,
        phases={"pushing": 1.0},
        driver=DriverStats(),
        counts=FleetCounts(devices=1),
        verdict=oracle.verdict(end_ms=10),
    )


def test_the_exit_status_is_1_when_the_oracle_finds_a_loss(monkeypatch: pytest.MonkeyPatch):
    async def fake_run_sim(config: SimConfig, **kwargs: object) -> SimResult:
        return failing_result()

    monkeypatch.setattr(sim_cli, "run_sim", fake_run_sim)
    args = ["--api", "http://x:1", "--ws", "ws://x:2", "--app", "a", "--key", "k"]
    outcome = CliRunner().invoke(sim_cli.sim, [*args, "--secret", "s", "--quiet"])
    assert outcome.exit_code == 1, outcome.output
    assert "FAIL" in outcome.output and "1 lost" in outcome.output
    assert "m1 @ d1" in outcome.output


def test_the_cli_wants_a_gateway():
    outcome = CliRunner().invoke(sim_cli.sim, ["--devices", "3"])
    assert outcome.exit_code == 2
    assert "--spawn-gateway" in outcome.output


def test_the_exit_status_is_3_when_nothing_can_connect(tmp_path: Path):
    args = ["--api", "http://127.0.0.1:9", "--ws", "ws://127.0.0.1:9", "--app", "a"]
    args += ["--key", "k", "--secret", "s", "--quiet", "--devices", "2"]
    outcome = CliRunner().invoke(sim_cli.sim, [*args, "--connect-timeout", "0.5"])
    assert outcome.exit_code == 3, outcome.output
    assert "no device could connect" in outcome.output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.2", ("127.0.0.2",)),
        ("127.0.0.2-127.0.0.4,10.0.0.1", ("127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1")),
    ],
)
def test_source_address_ranges(value, expected):
    assert sim_cli.parse_addresses(value) == expected


def test_behaviour_weights_and_the_plan():
    weights = sim_cli.parse_behaviours(("steady=3", "flaky,late"))
    assert weights == (("steady", 3.0), ("flaky", 1.0), ("late", 1.0))
    assert apportion(10, weights) == [("steady", 6), ("flaky", 2), ("late", 2)]
    config = SimConfig(
        api="http://x:1",
        url="ws://x:2/v1/connect",
        app="a",
        api_key="k",
        secret="s",
        devices=10,
        behaviours=weights,
        push_type="user",
        platform="mixed",
        messages=7,
    )
    plans = plan_devices(config, "p-")
    assert [p.device_id for p in plans][:2] == ["p-0", "p-1"]
    assert sorted(p.behaviour.name for p in plans).count("steady") == 6
    assert {p.platform for p in plans} == {"android", "ios"}
    assert plans[3].user == "p-u1"
    jobs = list(push_jobs(config, plans))
    assert len(jobs) == 7 and jobs[0].kind == "user" and jobs[0].expected[0] == {"p-0", "p-1"}
    multiple = replace(config, push_type="multiple", batch_size=3)
    batches = list(push_jobs(multiple, plans))
    assert sum(job.messages for job in batches) == 7
    assert all(
        len({plan.platform for plan in plans if plan.device_id in job.targets}) == 1
        for job in batches
    )


async def test_sigterm_stops_the_run_and_its_gateway(tmp_path: Path):
    args = [sys.executable, "-m", "gateway.cli", "sim", "--spawn-gateway", "--quiet"]
    args += ["--devices", "20", "--duration", "60", "--rate", "20"]
    env = {**os.environ, "COLUMNS": "400"}
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"\(log (\S+)\)", line)
        assert match, line
        log_path = Path(match.group(1))
        gateway_dir = log_path.parent
        assert gateway_dir.exists()
        # The run is under way once devices are online at the gateway.
        await wait_until(lambda: "event=device_online" in log_path.read_text(), "a device online")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, output
    assert "interrupted" in output
    # The spawned gateway was stopped and its temp directory removed.
    assert not gateway_dir.exists()

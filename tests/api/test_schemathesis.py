"""The whole HTTP API fuzzed from its own OpenAPI description: no 500 on any input, and
every status it answers is one the description documents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.channels import generate_key
from tests.harness import APP, ServerProcess, start_server_process

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_schemathesis_finds_no_server_error(
    tmp_path: Path, server_processes: list[ServerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Configured as deployed with vendor channels: without a key the channel
    # operations answer 503 channel_key_missing by design (gateway/api/channels.py).
    monkeypatch.setenv("PUSHGATE_CHANNEL_KEY", generate_key())
    server = start_server_process(tmp_path / "gw.db", "--rate-limit", "0")
    server_processes.append(server)
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.api}/openapi.json",
            "--header",
            f"Authorization: Bearer {APP.api_key}",
            "--checks",
            "not_a_server_error,status_code_conformance",
            "--phases",
            "coverage,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "9",
            "--request-timeout",
            "20",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary + run.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary.lower(), summary
    assert server.process.poll() is None  # and the gateway is still up

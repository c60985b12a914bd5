"""Configurations `serve` refuses at start: one clear line on stderr, a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

from tests.broker.support import MACHINE_REDIS, free_port
from tests.store_pg.database import session_database

CASES = {
    "bad store URL": (["--store", "mysql://db/x"], "not a store pushgate knows"),
    "workers without a broker": (["--workers", "2"], "--workers needs --broker"),
    "a broker with a SQLite file": (
        ["--broker", MACHINE_REDIS],
        "--broker needs a store every node shares",
    ),
    "a broker URL that is not Redis": (
        ["--broker", "http://127.0.0.1:6379", "--store", "PG"],
        "bad broker setting: broker URL must start with redis://",
    ),
    "an unreachable broker": (
        ["--broker", "redis://127.0.0.1:UNUSED/0", "--store", "PG"],
        "cannot reach the broker",
    ),
    "an unreachable store": (
        ["--store", "postgresql://postgres@127.0.0.1:UNUSED/x", "--broker", MACHINE_REDIS],
        "cannot open the store",
    ),
    "workers with an unreachable broker": (
        ["--workers", "2", "--broker", "redis://127.0.0.1:UNUSED/0", "--store", "PG"],
        "cannot reach the broker",
    ),
    "--db and --store differ": (["--db", "a.db", "--store", "b.db"], "give one"),
}


async def test_serve_refuses_what_cannot_work_with_one_clear_line(tmp_path: Path) -> None:
    pg = session_database().fresh_url()
    unused = str(free_port())
    results: dict[str, subprocess.CompletedProcess[bytes]] = {}

    async def run(name: str, args: list[str]) -> None:
        args = [pg if a == "PG" else a.replace("UNUSED", unused) for a in args]
        command = [sys.executable, "-m", "gateway.cli", "serve", "--api-port", "0"]
        command += ["--ws-port", "0", "--tcp-port", "0", *args]
        if "--store" not in args and "--db" not in args:
            command += ["--db", str(tmp_path / f"{len(results)}-{name[:8]}.db")]
        with trio.fail_after(60):
            results[name] = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path
            )

    async with trio.open_nursery() as nursery:
        for name, (args, _) in CASES.items():
            nursery.start_soon(run, name, args)
    for name, (_, expected) in CASES.items():
        result = results[name]
        stderr = result.stderr.decode()
        assert result.returncode in (1, 2), (name, result.returncode, stderr)
        assert "Traceback" not in stderr, (name, stderr)
        last = stderr.strip().splitlines()[-1]
        assert expected in last, (name, stderr)
        assert b"api=" not in result.stdout, name  # never got as far as listening

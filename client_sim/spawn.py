"""Start a local gateway for a quick look: `pushgate serve` on free ports, a temp database.

    async with spawned_gateway() as gw:
        print(gw.api, gw.ws_url, gw.app, gw.api_key)

The gateway runs as a child process (the simulator talks to it only through
the contract), with one app whose credentials are made up here, and with the
API rate limit off (`PUSHGATE_RATE_LIMIT=0`, which a gateway without that
setting ignores). It is stopped with SIGTERM, then killed if it lingers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from .worker import LineReader


class SpawnError(Exception):
    """The gateway did not start; the message holds the end of its log."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpawnedGateway:
    api: str
    ws: str  # the WebSocket base URL, as printed (no path)
    tcp: str
    app: str
    api_key: str
    secret: str
    log_path: Path
    process: trio.Process

    @property
    def ws_url(self) -> str:
        return self.ws.rstrip("/") + "/v1/connect"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def gateway_command() -> list[str]:
    """`pushgate` next to this Python if installed there, else on PATH, else
    `python -m gateway.cli` (run as a program; nothing of it is imported here)."""
    beside = Path(sys.executable).with_name("pushgate")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("pushgate")
    if found:
        return [found]
    return [sys.executable, "-m", "gateway.cli"]


@asynccontextmanager
async def spawned_gateway(
    *,
    extra_args: Sequence[str] = (),
    app: str = "sim",
    start_timeout: float = 30.0,
    stop_timeout: float = 20.0,
    directory: str | os.PathLike[str] | None = None,
) -> AsyncIterator[SpawnedGateway]:
    """Run `pushgate serve` on port 0 with a fresh database in a temp directory."""
    api_key = secrets.token_urlsafe(18)
    secret = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="pushgate-sim-", dir=directory) as tmp:
        db = Path(tmp) / "gateway.db"
        log_path = Path(tmp) / "gateway.log"
        args = [
            *gateway_command(),
            "serve",
            "--db",
            str(db),
            "--api-port",
            "0",
            "--ws-port",
            "0",
            "--tcp-port",
            "0",
            "--app",
            f"{app}:{api_key}:{secret}",
            *extra_args,
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PUSHGATE_RATE_LIMIT": "0"}
        with log_path.open("wb") as log_file:
            process = await trio.lowlevel.open_process(
                args, stdout=subprocess.PIPE, stderr=log_file, env=env
            )
        try:
            found = await _read_addresses(process, log_path, start_timeout)
            yield SpawnedGateway(
                api=found["api"],
                ws=found["ws"],
                tcp=found["tcp"],
                app=app,
                api_key=api_key,
                secret=secret,
                log_path=log_path,
                process=process,
            )
        finally:
            with trio.CancelScope(shield=True):
                await _stop(process, stop_timeout)


async def _read_addresses(process: trio.Process, log_path: Path, timeout: float) -> dict[str, str]:
    assert process.stdout is not None
    lines = LineReader(process.stdout)
    found: dict[str, str] = {}
    with trio.move_on_after(timeout):
        while len(found) < 3:
            line = await lines.next_line()
            if line is None:
                break
            key, _, value = line.decode(errors="replace").strip().partition("=")
            if key in ("api", "ws", "tcp"):
                found[key] = value
    if len(found) < 3:
        text = await trio.Path(log_path).read_text(errors="replace")
        tail = "\n".join(text.splitlines()[-20:])
        raise SpawnError(f"the gateway did not start (got {sorted(found)}):\n{tail}")
    return found


async def _stop(process: trio.Process, timeout: float) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(timeout):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    if process.stdout is not None:
        await process.stdout.aclose()

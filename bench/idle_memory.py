"""Idle memory per device connection: RSS of a real `pushgate serve` before and
after N devices have connected and said hello.

    python bench/idle_memory.py --devices 5000 --transport ws
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from client_sim.connection import open_device_connection
from protocol import Hello, Welcome, device_token

APP, KEY, SECRET = "bench", "bench-key", "bench-secret"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(db: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    args = [sys.executable, "-m", "gateway.cli", "serve", "--db", str(db), "--log-level", "warning"]
    args += ["--api-port", "0", "--ws-port", "0", "--tcp-port", "0"]
    args += ["--app", f"{APP}:{KEY}:{SECRET}", "--heartbeat", "600"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE)
    assert process.stdout is not None
    found: dict[str, str] = {}
    while len(found) < 3:
        key, _, value = process.stdout.readline().decode().strip().partition("=")
        if key in ("api", "ws", "tcp"):
            found[key] = value
    return process, found


async def connect_all(url: str, count: int, concurrency: int) -> list[object]:
    conns: list[object] = []
    limiter = trio.CapacityLimiter(concurrency)

    async def one(i: int) -> None:
        async with limiter:
            device = f"idle-{i}"
            conn = await open_device_connection(url)
            token = device_token(SECRET, APP, device)
            await conn.send_frame(
                Hello(v=1, app=APP, device=device, platform="android", token=token)
            )
            frame = await conn.receive_frame()
            assert isinstance(frame, Welcome), frame
            conns.append(conn)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(one, i)
    return conns


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process, addresses = start_server(Path(tmp) / "mem.db")
        try:
            url = addresses["ws"] + "/v1/connect" if args.transport == "ws" else addresses["tcp"]
            # Warm up allocator and code paths with a few connections first.
            warm = await connect_all(url, 50, 50)
            await trio.sleep(1)
            before = rss_kib(process.pid)
            started = time.monotonic()
            conns = await connect_all(url, args.devices, args.concurrency)
            took = time.monotonic() - started
            await trio.sleep(2)
            after = rss_kib(process.pid)
            per = (after - before) * 1024 / args.devices
            print(f"transport={args.transport} devices={args.devices} connect_seconds={took:.1f}")
            print(f"rss_before_kib={before} rss_after_kib={after} per_connection_bytes={per:.0f}")
            for conn in conns + warm:
                await conn.aclose()  # type: ignore[attr-defined]
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--transport", choices=["ws", "tcp"], default="ws")
    parser.add_argument("--concurrency", type=int, default=200)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    trio.run(main, parser.parse_args())

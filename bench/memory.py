"""Where the gateway's memory per idle connection goes.

    python -m bench.memory --devices 5000 [--transport ws|tcp] [--top 25]

Runs the gateway in this process with tracemalloc on, connects N devices from
a device worker process (bench.pushgate_devices, as `python -m bench` does), and
prints, per connection: RSS, traced Python bytes, the allocation sites (by
line) that grew, and the object types whose count grew. Tracing slows the
server down; the RSS figure of record is the one `python -m bench` measures
without it.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from gateway.server import Gateway
from gateway.settings import AppDeclaration, Settings

from .common import API_KEY, APP_ID, SECRET
from .control import Helper
from .machine import rss_bytes


def _types() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


def _filtered(snapshot: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return snapshot.filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>")]
    )


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import os

    settings = Settings(
        db=str(tmp / "memory.db"),
        api_port=0,
        ws_port=0,
        tcp_port=0,
        heartbeat=3600,
        apps=(AppDeclaration(APP_ID, API_KEY, SECRET),),
    )
    gateway = Gateway(settings)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(gateway.run)
        url = addresses.ws + "/v1/connect" if args.transport == "ws" else addresses.tcp
        log_dir = tmp / "logs"
        log_dir.mkdir()
        worker_args = ["--url", url, "--first", "0", "--count", str(args.devices)]
        worker_args += ["--source", "127.0.0.11"]
        worker = Helper("memory-devices", "bench.pushgate_devices", worker_args, log_dir)

        def command(cmd: str, event: str) -> dict[str, Any]:
            worker.send(cmd)
            return worker.expect(event, 600)

        try:
            await trio.sleep(0.5)
            gc.collect()
            rss0 = rss_bytes(os.getpid())
            types0 = _types()
            snap0 = _filtered(tracemalloc.take_snapshot())
            connected = await trio.to_thread.run_sync(command, "connect", "connected")
            await trio.sleep(2)
            gc.collect()
            rss1 = rss_bytes(os.getpid())
            types1 = _types()
            snap1 = _filtered(tracemalloc.take_snapshot())
            n = max(1, connected["connected"])
            stats = snap1.compare_to(snap0, "lineno")
            traced = sum(s.size_diff for s in stats)
            print(f"transport={args.transport} connections={n}")
            print(f"RSS per connection: {(rss1 - rss0) / n:,.0f} bytes (with tracemalloc on)")
            print(f"traced Python allocations per connection: {traced / n:,.0f} bytes")
            print(f"\ntop {args.top} allocation sites, bytes per connection:")
            for stat in stats[: args.top]:
                frame = stat.traceback[0]
                where = f"{Path(frame.filename).name}:{frame.lineno}"
                print(f"  {stat.size_diff / n:8.1f}  {stat.count_diff / n:6.2f} blocks  {where}")
            print("\nobjects per connection, by type (gc-tracked):")
            grown = Counter({k: types1[k] - types0[k] for k in types1})
            for name, count in grown.most_common(args.top):
                if count > 0:
                    print(f"  {count / n:6.2f}  {name}")
            await trio.to_thread.run_sync(command, "disconnect", "disconnected")
        finally:
            await trio.to_thread.run_sync(worker.stop)
            gateway.request_stop()
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--transport", choices=["ws", "tcp"], default="ws")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth to record")
    args = parser.parse_args()
    tracemalloc.start(args.frames)
    with tempfile.TemporaryDirectory(prefix="pushgate-memory-") as tmp:
        trio.run(measure, args, Path(tmp))


if __name__ == "__main__":
    main()

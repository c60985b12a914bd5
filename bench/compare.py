"""pushgate vs Mosquitto on this machine: same devices, same messages, one table.

    .venv/bin/python -m bench --devices 1000 --messages 50000 --transport ws,tcp

For each side in turn (pushgate once per `--transport`, then Mosquitto):
start the server fresh; connect every device (connects per second) and
measure the server's RSS per idle connection; then the phases, each timed
from the first publish to the last ack (for pushgate: the last ack *stored*):

- online @ rate: devices connected, messages published at `--rate` per
  second; push→receive latency p50/p99.
- online max: the same, published as fast as the publisher can (saturated).
- simple push (pushgate only): one message per `POST /v1/push/simple`,
  `--simple-concurrency` calls in flight, delivered and acked.
- offline-first: devices disconnected, messages published (stored by the
  server), then every device reconnects and drains its backlog.

Every device acks what each read brought at once: one `ack` frame (pushgate),
one PUBACK per message in one write (MQTT). For every phase the CPU of the
server, of the device workers and of the publisher is measured separately
(/proc/PID/stat), with each one's share of a core, and the phase is flagged
when a load generator, not the server, was saturated (bench/usage.py).
Prints one table with every side and the ratios, and writes the numbers, the
machine and the versions to a JSON file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import Share, messages_for, now_ns, percentile, shares
from .control import Helper, HelperFailed
from .machine import machine, open_sockets, rss_bytes, threads, versions
from .pushgate_devices import TRANSPORTS
from .report import print_table, scale_out
from .sides import MosquittoSide, PushgateSide, Side
from .usage import Snapshot, snapshot, usage

IDLE_SETTLE_SECONDS = 2.0
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def _profile(side: Side, out: Path | None, fmt: str) -> list[subprocess.Popen[bytes]]:
    """py-spy recording each pushgate server process (each node), if asked."""
    if out is None or not isinstance(side, PushgateSide):
        return []
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("--profile: no py-spy (pip install -e '.[bench]'); not profiling", flush=True)
        return []
    out.mkdir(parents=True, exist_ok=True)
    pids = side.node_pids or [side.pid]
    suffix = "svg" if fmt == "flamegraph" else "txt"
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "-o",
                str(out / f"{side.name}-{k}.{suffix}"),
                "-r",
                "200",
                "--format",
                fmt,
                *(["--gil"] if fmt == "raw" else []),
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for k, pid in enumerate(pids, 1)
    ]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.devices: int = args.devices
        self.shares: list[Share] = shares(args.devices, args.workers)

    def arm(self, side: Side, start: int, count: int, *, latency: bool) -> None:
        for worker, share in zip(side.workers, self.shares, strict=True):
            worker.send(
                "expect", count=messages_for(share, self.devices, start, count), latency=latency
            )
        for worker in side.workers:
            worker.expect("armed", 60)

    def collect(
        self, side: Side, count: int, extra: set[str] | None = None
    ) -> list[dict[str, Any]]:
        timeout = max(120.0, count / 500)
        events = {"done"} | (extra or set())
        dones = []
        for worker in side.workers:
            try:
                got = worker.expect_all(events, timeout)
            except HelperFailed as exc:
                side.server_alive()
                raise HelperFailed(f"{exc}\n  progress: {_progress(worker)}") from None
            dones.append(got)
        side.server_alive()
        return [{**d["done"], **{k: v for k, v in d.items() if k != "done"}} for d in dones]

    def phase(
        self,
        side: Side,
        label: str,
        start: int,
        count: int,
        rate: float,
        *,
        simple_concurrency: int = 0,
    ) -> dict[str, Any]:
        """Devices online: publish, wait until every message is acked (and stored)."""
        print(f"  {label}: {count:,} messages", flush=True)
        mark = side.mark()
        self.arm(side, start, count, latency=True)
        before = _snapshot(side)
        t0 = now_ns()
        published = side.publish(start, count, rate, simple_concurrency=simple_concurrency)
        dones = self.collect(side, count)
        stored_ns = side.wait_stored(mark, count, 60.0)
        used = usage(before, _snapshot(side), count)
        end_ns = max([d["last_ack_ns"] for d in dones] + [stored_ns or 0])
        return self._summary(label, count, rate, t0, end_ns, used, dones, published)

    def offline_phase(self, side: Side, start: int, count: int) -> dict[str, Any]:
        """Devices offline: publish everything, then reconnect them all and drain."""
        print(f"  offline-first: {count:,} messages", flush=True)
        for worker in side.workers:
            worker.send("disconnect")
        for worker in side.workers:
            worker.expect("disconnected", 300)
        time.sleep(1.0)  # let the server notice every disconnect
        mark = side.mark()
        before = _snapshot(side)
        t0 = now_ns()
        published = side.publish(start, count, 0)
        ingest_seconds = (now_ns() - t0) / 1e9
        middle = _snapshot(side)
        self.arm(side, start, count, latency=False)
        t1 = now_ns()
        for worker in side.workers:
            worker.send("connect")
        dones = self.collect(side, count, {"connected"})
        stored_ns = side.wait_stored(mark, count, 60.0)
        drained = usage(middle, _snapshot(side), count)
        end_ns = max([d["last_ack_ns"] for d in dones] + [stored_ns or 0])
        summary = self._summary("offline", count, 0, t1, end_ns, drained, dones, published)
        summary["ingest_msgs_per_s"] = count / ingest_seconds
        summary["ingest"] = usage(before, middle, count)
        summary["reconnected"] = sum(d["connected"]["connected"] for d in dones)
        return summary

    @staticmethod
    def _summary(
        label: str,
        count: int,
        rate: float,
        t0: int,
        end_ns: int,
        used: dict[str, Any],
        dones: list[dict[str, Any]],
        published: dict[str, Any],
    ) -> dict[str, Any]:
        seconds = max(1e-9, (end_ns - t0) / 1e9)
        latencies = sorted(v for d in dones for v in d["latencies_us"])
        received = sum(d["received"] for d in dones)
        out = {
            "phase": label,
            "messages": count,
            "offered_rate": rate or None,
            "seconds": seconds,
            "delivered_acked_per_s": count / seconds,
            "publish_seconds": published.get("seconds"),
            "server_cpu_us_per_msg": used["server_cpu_seconds"] / count * 1e6,
            "load_generator_cpu_us_per_msg": used["device_workers_cpu_us_per_msg"]
            + used["publisher_cpu_us_per_msg"],
            "usage": used,
            "latency_ms": {
                "p50": _ms(percentile(latencies, 50)),
                "p99": _ms(percentile(latencies, 99)),
                "max": _ms(latencies[-1] if latencies else None),
                "samples": len(latencies),
            },
            "received": received,
            "duplicates": sum(d["duplicates"] for d in dones),
            "errors": [e for d in dones for e in d["errors"]][:10],
            "publisher": {k: v for k, v in published.items() if k not in ("started_ns",)},
        }
        if received < count:
            raise HelperFailed(f"{label}: {received} of {count} messages received")
        return out

    def run_side(self, side: Side) -> dict[str, Any]:
        args = self.args
        result: dict[str, Any] = {"side": side.name}
        profilers: list[subprocess.Popen[bytes]] = []
        try:
            # Inside the try: a helper failing to start must not leave the server running.
            side.start(self.shares, args.concurrency)
            time.sleep(0.5)
            rss0 = _rss(side)
            print(f"  connect: {self.devices:,} devices", flush=True)
            before = _snapshot(side)
            for worker in side.workers:
                worker.send("connect")
            connected = [w.expect("connected", 600) for w in side.workers]
            connect_usage = usage(before, _snapshot(side), self.devices)
            connect_seconds = connect_usage["wall_seconds"]
            held = sum(c["connected"] for c in connected)
            failed = sum(c["failed"] for c in connected)
            if failed:
                failures = [f for c in connected for f in c["failures"]]
                raise HelperFailed(f"{side.name}: {failed} devices failed to connect: {failures}")
            time.sleep(IDLE_SETTLE_SECONDS)
            rss1 = _rss(side)
            result["idle"] = {
                "connections": held,
                "server_sockets": sum(open_sockets(pid) for pid in side.server_pids()),
                "rss_before_bytes": rss0,
                "rss_after_bytes": rss1,
                "rss_per_connection_bytes": (rss1 - rss0) / max(1, held),
                "connect_seconds": connect_seconds,
                "connects_per_s": held / connect_seconds,
                "connect_usage": connect_usage,
            }
            if isinstance(side, PushgateSide) and side.nodes:
                result["idle"]["devices_per_node"] = side.devices_per_node()
            if args.idle_only:
                return result
            profilers = _profile(side, args.profile, args.profile_format)
            latency_messages = args.latency_messages or min(args.messages, int(args.rate * 10))
            result["online_rate"] = self.phase(side, "online_rate", 0, latency_messages, args.rate)
            start = latency_messages
            result["online_max"] = self.phase(side, "online_max", start, args.messages, 0)
            start += args.messages
            if isinstance(side, PushgateSide) and args.simple_calls > 0:
                result["simple"] = self.phase(
                    side,
                    "simple",
                    start,
                    args.simple_calls,
                    0,
                    simple_concurrency=args.simple_concurrency,
                )
                start += args.simple_calls
            result["offline"] = self.offline_phase(side, start, args.messages)
            result["processes"] = {
                "server_processes": len(side.server_pids()),
                "server_threads": sum(threads(pid) for pid in side.server_pids()),
                "device_worker_processes": len(side.workers),
                "publisher_processes": len(side.publishers),
            }
            if isinstance(side, PushgateSide):
                result["push_api"] = "multiple" if side.multiple else "simple"
        finally:
            for profiler in profilers:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            for profiler in profilers:
                profiler.wait(timeout=60)
            side.stop()
        return result


def _progress(worker: Helper) -> str:
    """What a worker that did not finish has acked, and its first errors."""
    try:
        worker.send("report")
        report = worker.expect("report", 30)
    except HelperFailed as exc:
        return f"no report ({exc})"
    errors = report["errors"][:5]
    return f"acked {report['acked']} of {report['expected']}, errors {errors}"


def _snapshot(side: Side) -> Snapshot:
    return snapshot(
        side.server_pids(),
        [w.pid for w in side.workers],
        [p.pid for p in side.publishers],
        side.engine_pids(),
    )


def _rss(side: Side) -> int:
    return sum(rss_bytes(pid) for pid in side.server_pids())


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000.0


RATIO_KEYS = {
    "rss_per_connection": ("idle", "rss_per_connection_bytes"),
    "connects_per_s": ("idle", "connects_per_s"),
    "online_rate_msgs_per_s": ("online_rate", "delivered_acked_per_s"),
    "online_rate_cpu_us_per_msg": ("online_rate", "server_cpu_us_per_msg"),
    "online_max_msgs_per_s": ("online_max", "delivered_acked_per_s"),
    "online_max_cpu_us_per_msg": ("online_max", "server_cpu_us_per_msg"),
    "offline_msgs_per_s": ("offline", "delivered_acked_per_s"),
    "offline_cpu_us_per_msg": ("offline", "server_cpu_us_per_msg"),
}


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """pushgate ÷ mosquitto for each headline number, per pushgate side."""
    m = results.get("mosquitto")
    if not m:
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for name, p in results.items():
        if name == "mosquitto":
            continue
        mine: dict[str, float | None] = {}
        for key, (phase, field) in RATIO_KEYS.items():
            a, b = p[phase][field], m[phase][field]
            mine[key] = a / b if b else None
        for phase in ("online_rate", "online_max"):
            for q in ("p50", "p99"):
                a, b = p[phase]["latency_ms"][q], m[phase]["latency_ms"][q]
                mine[f"{phase}_latency_{q}"] = a / b if a is not None and b else None
        out[name] = mine
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=5000, help="N devices (default 5000)")
    parser.add_argument(
        "--messages", type=int, default=100_000, help="M messages per phase (default 100000)"
    )
    parser.add_argument(
        "--rate", type=float, default=5000, help="msg/s of the latency phase (default 5000)"
    )
    parser.add_argument(
        "--latency-messages",
        type=int,
        default=0,
        help="messages of the latency phase (default: 10 s worth, at most --messages)",
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="device worker processes (default: 1 per 5000)"
    )
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight/worker")
    parser.add_argument(
        "--transport",
        default="ws",
        help="pushgate devices: ws, tcp, or ws,tcp for both in one run (default ws)",
    )
    parser.add_argument(
        "--simple-calls",
        type=int,
        default=-1,
        help="calls of the simple-push phase (default: --messages/5, at most 20000; 0: skip)",
    )
    parser.add_argument(
        "--simple-concurrency", type=int, default=64, help="simple-push calls in flight"
    )
    parser.add_argument(
        "--simple-publishers", type=int, default=2, help="processes making the simple-push calls"
    )
    parser.add_argument(
        "--sides", default="pushgate,mosquitto", help="comma-separated: pushgate,mosquitto"
    )
    parser.add_argument(
        "--store",
        default="sqlite",
        help="pushgate's store, comma-separated for several: sqlite (a fresh file), or the URL"
        " of a PostgreSQL server (a fresh database on it), e.g."
        " sqlite,postgresql://postgres@127.0.0.1/test, or none (only the --nodes sides;"
        " default sqlite)",
    )
    parser.add_argument(
        "--nodes",
        default="",
        help="also run pushgate as N nodes on PostgreSQL + Redis (`serve --workers N`), for each"
        " N of a comma-separated list, e.g. 1,2 (default: none)",
    )
    parser.add_argument(
        "--pg",
        default=DEFAULT_PG,
        help=f"PostgreSQL of the --nodes sides (a fresh database on it; default {DEFAULT_PG})",
    )
    parser.add_argument(
        "--broker",
        default=DEFAULT_BROKER,
        help=f"Redis of the --nodes sides (a fresh key prefix; default {DEFAULT_BROKER})",
    )
    parser.add_argument(
        "--idle-only",
        action="store_true",
        help="only connect the devices and measure them idle (connects/s, RSS), no messages",
    )
    parser.add_argument(
        "--json", type=Path, default=Path("artifacts/bench/results.json"), help="results file"
    )
    parser.add_argument("--logs", type=Path, default=None, help="helper logs (default: a temp dir)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy flame graph of pushgate into DIR"
    )
    parser.add_argument(
        "--profile-format",
        choices=("flamegraph", "raw"),
        default="flamegraph",
        help="flamegraph (SVG) or raw (collapsed stacks of the thread holding the GIL: CPU only)",
    )
    args = parser.parse_args(argv)
    if args.workers <= 0:
        args.workers = max(2, math.ceil(args.devices / 5000))
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(sides) - {"pushgate", "mosquitto"}
    if unknown:
        parser.error(f"unknown sides: {sorted(unknown)}")
    transports = [t.strip() for t in args.transport.split(",") if t.strip()]
    if not transports or set(transports) - set(TRANSPORTS):
        parser.error(f"--transport: ws, tcp or ws,tcp (got {args.transport!r})")
    stores = [s.strip() for s in args.store.split(",") if s.strip() and s.strip() != "none"]
    if any(s != "sqlite" and not s.startswith("postgresql://") for s in stores):
        parser.error(f"--store: sqlite and/or postgresql:// URLs, or none (got {args.store!r})")
    try:
        node_counts = [int(n) for n in args.nodes.split(",") if n.strip()]
    except ValueError:
        parser.error(f"--nodes: comma-separated counts, e.g. 1,2 (got {args.nodes!r})")
    if any(n < 1 or n > 64 for n in node_counts):
        parser.error("--nodes: each count 1..64")
    if not args.pg.startswith("postgresql://"):
        parser.error(f"--pg: a postgresql:// URL (got {args.pg!r})")
    if args.simple_calls < 0:
        args.simple_calls = min(20_000, max(1, args.messages // 5))

    run = Run(args)
    results: dict[str, dict[str, Any]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="pushgate-bench-") as tmp:
        log_dir = args.logs or Path(tmp) / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        planned: list[Side] = []
        for name in sides:
            if name == "pushgate":
                # One node per store, then each node count on PostgreSQL + Redis.
                configs = [(t, store, 0) for t, store in itertools.product(transports, stores)]
                configs += [(t, args.pg, n) for t, n in itertools.product(transports, node_counts)]
                for transport, store, nodes in configs:
                    workdir = Path(tmp) / f"pushgate-{transport}-{len(planned)}"
                    workdir.mkdir()
                    planned.append(
                        PushgateSide(
                            workdir,
                            log_dir,
                            args.devices,
                            transport=transport,
                            simple_publishers=args.simple_publishers,
                            store=store,
                            nodes=nodes,
                            broker=args.broker,
                        )
                    )
            else:
                workdir = Path(tmp) / name
                workdir.mkdir()
                planned.append(MosquittoSide(workdir, log_dir, args.devices))
        for side in planned:
            print(f"running {side.name} ...", flush=True)
            try:
                results[side.name] = run.run_side(side)
            except HelperFailed as exc:
                print(f"\n{side.name} failed: {exc}", flush=True)
                return 1
    document = {
        "command": "python -m bench " + " ".join(argv if argv is not None else _argv()),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_seconds": time.time() - started,
        "config": {
            "devices": args.devices,
            "messages": args.messages,
            "rate": args.rate,
            "workers": args.workers,
            "transports": transports,
            "stores": [s.split("@")[-1] if s != "sqlite" else s for s in stores],
            "nodes": node_counts,
            "idle_only": args.idle_only,
            "simple_calls": args.simple_calls,
            "simple_concurrency": args.simple_concurrency,
            "simple_publishers": args.simple_publishers,
            "acks": "per read: one ack frame (pushgate), one PUBACK per message (MQTT)",
        },
        "machine": machine(),
        "versions": versions(),
        "results": results,
        "ratios": ratios(results),
        "scale_out": scale_out(results),
    }
    print_table(document)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {args.json}")
    return 0


def _argv() -> list[str]:
    return sys.argv[1:]

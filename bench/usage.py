"""Who used the CPU during a phase, and so who was saturated.

A `Snapshot` before and after a phase gives, per process, its CPU seconds and
its share of one core: the server (and its busiest thread: a Python server
saturates when its event-loop thread does, whatever the process total; with
several nodes, every node process), each device worker, the publishers, the
engines the server runs on (PostgreSQL and Redis processes, for a store or
broker on this machine), and the whole machine from /proc/stat (the cores
are shared with whatever else runs there).

`bottleneck` names what limited the phase: "server" when the server's busiest
thread was above `SATURATED` of a core; "GENERATOR" when a load generator
process was and the server was not (the figure then measures the generator,
not the server: the table flags it); "machine" when neither was but all cores
together were, busy with the server and its load generator ("machine
(shared)" when processes outside the benchmark took more than
`SHARED` of the cores: a busy machine, figures to rerun on a quiet one);
else "none" (paced or latency-bound).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .machine import CLOCK_TICKS, cpu_seconds

SATURATED = 0.9  # share of one core
SHARED = 0.1  # share of all cores used outside the benchmark


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """utime + stime of every thread of `pid`."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass(frozen=True, slots=True)
class Snapshot:
    wall: float
    server: dict[int, float]  # per server process (several nodes: each one)
    server_threads: dict[int, float]
    workers: list[float]
    publishers: list[float]
    engines: dict[int, float]  # per PostgreSQL / Redis process the server uses
    machine: tuple[int, int]


def _processes_cpu(pids: list[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except OSError:
            continue  # it ended (a PostgreSQL backend that closed, a restarted node)
    return out


def _between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings; a process born meanwhile counts from 0."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def snapshot(
    server_pids: list[int],
    worker_pids: list[int],
    publisher_pids: list[int],
    engine_pids: list[int] | None = None,
) -> Snapshot:
    threads: dict[int, float] = {}
    for pid in server_pids:
        try:
            threads.update(thread_cpu_seconds(pid))
        except OSError:
            continue
    return Snapshot(
        wall=time.monotonic(),
        server=_processes_cpu(server_pids),
        server_threads=threads,
        workers=[cpu_seconds(pid) for pid in worker_pids],
        publishers=[cpu_seconds(pid) for pid in publisher_pids],
        engines=_processes_cpu(engine_pids or []),
        machine=machine_jiffies(),
    )


def usage(before: Snapshot, after: Snapshot, messages: int) -> dict[str, Any]:
    """What each process used between two snapshots, per message and per core."""
    wall = max(1e-9, after.wall - before.wall)
    per_msg = 1e6 / max(1, messages)
    threads = [
        after.server_threads[tid] - before.server_threads.get(tid, 0.0)
        for tid in after.server_threads
    ]
    workers = [b - a for a, b in zip(before.workers, after.workers, strict=True)]
    publishers = [b - a for a, b in zip(before.publishers, after.publishers, strict=True)]
    publisher = sum(publishers)
    server = _between(before.server, after.server)
    engines = _between(before.engines, after.engines)
    busy = after.machine[0] - before.machine[0]
    total = max(1, after.machine[1] - before.machine[1])
    server_thread_share = max(threads, default=0.0) / wall
    worker_share = max(workers, default=0.0) / wall
    publisher_share = max(publishers, default=0.0) / wall
    machine_share = busy / total
    cores = os.cpu_count() or 1
    ours = (server + engines + sum(workers) + publisher) / wall / cores
    others = max(0.0, machine_share - ours)
    if server_thread_share >= SATURATED:
        bottleneck = "server"
    elif max(worker_share, publisher_share) >= SATURATED:
        bottleneck = "GENERATOR"
    elif machine_share >= SATURATED:
        bottleneck = "machine (shared)" if others > SHARED else "machine"
    else:
        bottleneck = "none"
    return {
        "wall_seconds": wall,
        "server_cpu_seconds": server,
        "server_core_pct": 100 * server / wall,
        "server_busiest_thread_core_pct": 100 * server_thread_share,
        "engines_cpu_seconds": engines,
        "engines_cpu_us_per_msg": engines * per_msg,
        "engines_core_pct": 100 * engines / wall,
        "device_workers_cpu_seconds": sum(workers),
        "device_workers_cpu_us_per_msg": sum(workers) * per_msg,
        "device_worker_busiest_core_pct": 100 * worker_share,
        "publisher_cpu_seconds": publisher,
        "publisher_cpu_us_per_msg": publisher * per_msg,
        "publisher_core_pct": 100 * publisher_share,  # the busiest publisher process
        "machine_busy_pct": 100 * machine_share,
        "outside_benchmark_pct": 100 * others,
        "machine_cores": cores,
        "bottleneck": bottleneck,
    }

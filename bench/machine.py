"""The machine, the versions, and what /proc says about a server process."""

from __future__ import annotations

import os
import platform
import re
import resource
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MOSQUITTO = "/usr/sbin/mosquitto"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def open_sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def mosquitto_version() -> str | None:
    try:
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"mosquitto version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else None


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text()
    total_kib = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))  # type: ignore[union-attr]
    model = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "memory_bytes": total_kib * 1024,
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "nofile_limit": [soft, hard],
    }


def versions() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "trio": _version("trio"),
        "pushgate": _version("pushgate"),
        "wsproto": _version("wsproto"),
        "msgpack": _version("msgpack"),
        "hypercorn": _version("hypercorn"),
        "sqlite": sqlite3.sqlite_version,
        "mosquitto": mosquitto_version(),
        "uvloop": _version("uvloop"),
    }


def pids_named(*names: str) -> list[int]:
    """Every process whose command name is one of `names` (e.g. postgres, redis-server)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in names:
                out.append(int(entry.name))
        except OSError:
            continue
    return out

"""The one table: every headline number of every side, and pushgate ÷ mosquitto.

Each phase has its server CPU per message, the load generator's CPU per
message (device workers and publisher apart), the busiest process's share of
a core, and a "saturated" row naming what limited it (bench/usage.py):
"GENERATOR!" marks a phase whose figures measure the load generator, not the
server.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Cell = float | str | None
Getter = Callable[[dict[str, Any]], Cell]
Row = tuple[str, Getter, int]  # label, getter, decimals (-1: text)

# Rows whose pushgate ÷ Mosquitto ratio means something (the headline figures).
RATIO_ROWS = (
    "server RSS per idle connection",
    "connects per second",
    "delivered+acked msg/s",
    "latency p50",
    "latency p99",
    "server CPU µs/msg",
    "device workers CPU µs/",
    "publisher CPU µs/",
    "stored msg/s",
)


def _get(*path: str) -> Getter:
    def get(side: dict[str, Any]) -> Cell:
        value: Any = side
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        if value is None or isinstance(value, str):
            return value
        return float(value)

    return get


def _per_node(side: dict[str, Any]) -> Cell:
    counts = side.get("idle", {}).get("devices_per_node")
    return " + ".join(f"{c:,}" for c in counts) if counts else None


def _busiest_generator(*path: str) -> Getter:
    workers = _get(*path, "device_worker_busiest_core_pct")
    publisher = _get(*path, "publisher_core_pct")

    def get(side: dict[str, Any]) -> Cell:
        values = [v for v in (workers(side), publisher(side)) if isinstance(v, float)]
        return max(values) if values else None

    return get


def _flag(*path: str) -> Getter:
    get = _get(*path, "bottleneck")

    def flag(side: dict[str, Any]) -> Cell:
        value = get(side)
        return "GENERATOR!" if value == "GENERATOR" else value

    return flag


def _usage_rows(label: str, *usage: str, unit: str = "msg") -> list[Row]:
    def at(*key: str) -> Getter:
        return _get(*usage, *key)

    return [
        (f"{label}: PostgreSQL+Redis CPU µs/{unit}", at("engines_cpu_us_per_msg"), 1),
        (f"{label}: device workers CPU µs/{unit}", at("device_workers_cpu_us_per_msg"), 1),
        (f"{label}: publisher CPU µs/{unit}", at("publisher_cpu_us_per_msg"), 1),
        (f"{label}: server % of a core (busiest thread)", at("server_busiest_thread_core_pct"), 0),
        (f"{label}: busiest generator process % of a core", _busiest_generator(*usage), 0),
        (f"{label}: machine busy % (all cores)", at("machine_busy_pct"), 0),
        (f"{label}: of which outside the benchmark %", at("outside_benchmark_pct"), 0),
        (f"{label}: saturated", _flag(*usage), -1),
    ]


def rows(rate: float) -> list[Row]:
    at = f"online @{rate:,.0f}/s"
    return [
        ("idle connections held", _get("idle", "connections"), 0),
        ("idle devices per node", _per_node, -1),
        ("server RSS per idle connection (bytes)", _get("idle", "rss_per_connection_bytes"), 0),
        ("connects per second", _get("idle", "connects_per_s"), 0),
        *_usage_rows("connect", "idle", "connect_usage", unit="connect"),
        (f"{at}: delivered+acked msg/s", _get("online_rate", "delivered_acked_per_s"), 0),
        (f"{at}: latency p50 (ms)", _get("online_rate", "latency_ms", "p50"), 1),
        (f"{at}: latency p99 (ms)", _get("online_rate", "latency_ms", "p99"), 1),
        (f"{at}: server CPU µs/msg", _get("online_rate", "server_cpu_us_per_msg"), 1),
        *_usage_rows(at, "online_rate", "usage"),
        ("online max: delivered+acked msg/s", _get("online_max", "delivered_acked_per_s"), 0),
        ("online max: latency p50 (ms)", _get("online_max", "latency_ms", "p50"), 1),
        ("online max: latency p99 (ms)", _get("online_max", "latency_ms", "p99"), 1),
        ("online max: server CPU µs/msg", _get("online_max", "server_cpu_us_per_msg"), 1),
        *_usage_rows("online max", "online_max", "usage"),
        ("simple push: calls/s (delivered+acked)", _get("simple", "delivered_acked_per_s"), 0),
        ("simple push: server CPU µs/call", _get("simple", "server_cpu_us_per_msg"), 1),
        *_usage_rows("simple push", "simple", "usage", unit="call"),
        ("offline-first: stored msg/s (devices away)", _get("offline", "ingest_msgs_per_s"), 0),
        ("offline-first: drain delivered+acked msg/s", _get("offline", "delivered_acked_per_s"), 0),
        ("offline-first: drain server CPU µs/msg", _get("offline", "server_cpu_us_per_msg"), 1),
        *_usage_rows("offline-first drain", "offline", "usage"),
        ("server processes", _get("processes", "server_processes"), 0),
        ("server threads", _get("processes", "server_threads"), 0),
        ("device worker processes", _get("processes", "device_worker_processes"), 0),
        ("publisher processes", _get("processes", "publisher_processes"), 0),
    ]


SCALE_PHASES = {
    "online max": "online_max",
    "online @rate": "online_rate",
    "simple push": "simple",
    "offline-first drain": "offline",
}


def _throughput(side: dict[str, Any], phase: str) -> tuple[float, float] | None:
    """(delivered+acked per second, server + engines CPU µs per message) of a phase."""
    got = side.get(phase)
    if not isinstance(got, dict):
        return None
    engines = got["usage"].get("engines_cpu_us_per_msg", 0.0)
    return float(got["delivered_acked_per_s"]), float(got["server_cpu_us_per_msg"] + engines)


def scale_out(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """For each transport with node sides: the SQLite node, each node count, and the ratios
    the scale-out targets name (2 nodes ÷ 1 node; 1 PostgreSQL node ÷ the SQLite node)."""
    out: list[dict[str, Any]] = []
    for transport in ("ws", "tcp"):
        single = results.get(f"pushgate-{transport}")
        prefix = f"pushgate-{transport}-pg-"
        sides = {
            int(name.removeprefix(prefix).removesuffix("nodes").removesuffix("node")): side
            for name, side in results.items()
            if name.startswith(prefix) and name.endswith(("node", "nodes"))
        }
        if not sides:
            continue
        for label, phase in SCALE_PHASES.items():
            base = _throughput(single, phase) if single else None
            nodes = {str(n): _throughput(side, phase) for n, side in sorted(sides.items())}
            one, two = nodes.get("1"), nodes.get("2")
            if base is None and not any(nodes.values()):
                continue
            out.append(
                {
                    "transport": transport,
                    "phase": label,
                    "sqlite": base,
                    "nodes": nodes,
                    "two_over_one": two[0] / one[0] if one and two else None,
                    "one_over_sqlite": one[0] / base[0] if one and base else None,
                }
            )
    return out


def print_scale_out(rows_: list[dict[str, Any]]) -> None:
    if not rows_:
        return
    counts = list(rows_[0]["nodes"])
    head = ["transport", "phase", "sqlite node", *(f"pg+redis {n}n" for n in counts)]
    head += ["2n ÷ 1n", "1n ÷ sqlite"]
    table_ = [head]
    for r in rows_:
        cells = [r["transport"], r["phase"]]
        for v in [r["sqlite"], *(r["nodes"].get(n) for n in counts)]:
            cells.append(f"{v[0]:,.0f}/s @{v[1]:,.0f}µs" if v else "—")
        for ratio in (r["two_over_one"], r["one_over_sqlite"]):
            cells.append(f"{ratio:.2f}×" if ratio else "—")
        table_.append(cells)
    widths = [max(len(row[i]) for row in table_) for i in range(len(head))]
    print("\nscale-out: delivered+acked msg/s @ server+PostgreSQL+Redis CPU µs per message")
    for k, row in enumerate(table_):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Cell, digits: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if digits <= 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def side_names(results: dict[str, Any]) -> list[str]:
    """pushgate sides first (in run order), Mosquitto last."""
    return [n for n in results if n != "mosquitto"] + [n for n in results if n == "mosquitto"]


def table(document: dict[str, Any]) -> list[list[str]]:
    results: dict[str, dict[str, Any]] = document["results"]
    names = side_names(results)
    pushgates = [n for n in names if n != "mosquitto"] if "mosquitto" in results else []
    out = [["metric", *names, *(f"{n} ÷ mosquitto" for n in pushgates)]]
    for label, get, digits in rows(document["config"]["rate"]):
        values = [get(results[n]) for n in names]
        if all(v is None for v in values):
            continue  # a phase no side ran (--idle-only, a pushgate-only phase)
        line = [label, *(_fmt(x, digits) for x in values)]
        mosquitto = get(results["mosquitto"]) if pushgates else None
        ratio = any(key in label for key in RATIO_ROWS)
        for name in pushgates:
            a = get(results[name])
            if not ratio:
                line.append("")
            elif isinstance(a, float) and isinstance(mosquitto, float) and mosquitto:
                line.append(f"{a / mosquitto:.2f}×")
            else:
                line.append("—")
        out.append(line)
    return out


def preamble(document: dict[str, Any]) -> list[str]:
    config = document["config"]
    m, v = document["machine"], document["versions"]
    return [
        f"machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB,"
        f" kernel {m['kernel']}, nofile {m['nofile_limit'][0]}",
        f"versions: python {v['python']}, trio {v['trio']}, pushgate {v['pushgate']},"
        f" sqlite {v['sqlite']}, mosquitto {v['mosquitto']}, uvloop {v['uvloop']}",
        f"run: {config['devices']:,} devices, {config['messages']:,} messages per phase,"
        f" {config['simple_calls']:,} simple-push calls ({config['simple_concurrency']} in flight,"
        f" {config['simple_publishers']} processes),"
        f" {config['workers']} device workers per side; acks: {config['acks']}",
    ]


def markdown(document: dict[str, Any]) -> str:
    """The same table as Markdown, with the command and the preamble."""
    lines = [f"`{document['command']}` ({document['started_at']})", ""]
    lines += [f"- {line}" for line in preamble(document)]
    lines.append("")
    rows_ = table(document)
    for k, row in enumerate(rows_):
        lines.append("| " + " | ".join(cell or " " for cell in row) + " |")
        if k == 0:
            lines.append("|---" + "|---:" * (len(row) - 1) + "|")
    return "\n".join(lines) + "\n"


def print_table(document: dict[str, Any]) -> None:
    print()
    for line in preamble(document):
        print(line)
    print()
    rows_ = table(document)
    widths = [max(len(row[i]) for row in rows_) for i in range(len(rows_[0]))]
    for k, row in enumerate(rows_):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print_scale_out(document.get("scale_out") or [])


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a results file of `python -m bench`.")
    parser.add_argument("results", type=Path, help="the --json file of a run")
    parser.add_argument("--markdown", action="store_true", help="as a Markdown table")
    args = parser.parse_args()
    document = json.loads(args.results.read_text())
    if args.markdown:
        print(markdown(document), end="")
    else:
        print_table(document)


if __name__ == "__main__":
    main()

"""The one table: every headline number of both sides, and pushgate ÷ mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Getter = Callable[[dict[str, Any]], float | None]


def _get(*path: str) -> Getter:
    def get(side: dict[str, Any]) -> float | None:
        value: Any = side
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return None if value is None else float(value)

    return get


def _fmt(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def rows(rate: float) -> list[tuple[str, Getter, int]]:
    at = f"online @{rate:,.0f}/s"
    return [
        ("idle connections held", _get("idle", "connections"), 0),
        ("server RSS per idle connection (bytes)", _get("idle", "rss_per_connection_bytes"), 0),
        ("connects per second", _get("idle", "connects_per_s"), 0),
        (f"{at}: delivered+acked msg/s", _get("online_rate", "delivered_acked_per_s"), 0),
        (f"{at}: latency p50 (ms)", _get("online_rate", "latency_ms", "p50"), 1),
        (f"{at}: latency p99 (ms)", _get("online_rate", "latency_ms", "p99"), 1),
        (f"{at}: server CPU µs/msg", _get("online_rate", "server_cpu_us_per_msg"), 1),
        (
            f"{at}: load generator CPU µs/msg",
            _get("online_rate", "load_generator_cpu_us_per_msg"),
            1,
        ),
        ("online max: delivered+acked msg/s", _get("online_max", "delivered_acked_per_s"), 0),
        ("online max: latency p50 (ms)", _get("online_max", "latency_ms", "p50"), 1),
        ("online max: latency p99 (ms)", _get("online_max", "latency_ms", "p99"), 1),
        ("online max: server CPU µs/msg", _get("online_max", "server_cpu_us_per_msg"), 1),
        (
            "online max: load generator CPU µs/msg",
            _get("online_max", "load_generator_cpu_us_per_msg"),
            1,
        ),
        ("offline-first: stored msg/s (devices away)", _get("offline", "ingest_msgs_per_s"), 0),
        ("offline-first: drain delivered+acked msg/s", _get("offline", "delivered_acked_per_s"), 0),
        ("offline-first: server CPU µs/msg", _get("offline", "server_cpu_us_per_msg"), 1),
        (
            "offline-first: load generator CPU µs/msg",
            _get("offline", "load_generator_cpu_us_per_msg"),
            1,
        ),
        ("server processes", _get("processes", "server_processes"), 0),
        ("server threads", _get("processes", "server_threads"), 0),
        ("device worker processes", _get("processes", "device_worker_processes"), 0),
        ("publisher processes", _get("processes", "publisher_processes"), 0),
    ]


def print_table(document: dict[str, Any]) -> None:
    results: dict[str, dict[str, Any]] = document["results"]
    config = document["config"]
    m, v = document["machine"], document["versions"]
    names = [n for n in ("pushgate", "mosquitto") if n in results]
    print()
    print(
        f"machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB,"
        f" kernel {m['kernel']}, nofile {m['nofile_limit'][0]}"
    )
    print(
        f"versions: python {v['python']}, trio {v['trio']}, pushgate {v['pushgate']},"
        f" sqlite {v['sqlite']}, mosquitto {v['mosquitto']}, paho-mqtt {v['paho-mqtt']}"
    )
    api = results.get("pushgate", {}).get("push_api")
    print(
        f"run: {config['devices']:,} devices, {config['messages']:,} messages per phase,"
        f" {config['workers']} device workers per side"
        + (f", pushgate pushes via /v1/push/{api}" if api else "")
    )
    print()
    header = ["metric", *names]
    if len(names) == 2:
        header.append("pushgate ÷ mosquitto")
    table = [header]
    for label, get, digits in rows(config["rate"]):
        values = [get(results[n]) for n in names]
        line = [label, *(_fmt(x, digits) for x in values)]
        if len(names) == 2:
            a, b = values
            line.append("—" if a is None or not b else f"{a / b:.2f}×")
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for k, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if k == 0:
            print("  ".join("-" * w for w in widths))

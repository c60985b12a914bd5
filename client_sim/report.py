"""The end of a run, for people and programs: rich tables, JSON, a latency plot."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .oracle import LatencyStats
from .runner import SimResult

# (verdict field, label, a failure when non-zero?)
VERDICT_ROWS = (
    ("messages", "messages accepted", False),
    ("expected_deliveries", "deliveries expected", False),
    ("delivered", "delivered", False),
    ("acked", "acked", False),
    ("lost", "lost", True),
    ("misdelivered", "misdelivered (wrong device)", True),
    ("late", "delivered after expiry", True),
    ("unreachable", "unreachable (device offline)", False),
    ("unknown", "unknown ids (not pushed in this run)", False),
    ("redeliveries", "redeliveries after reconnect", False),
    ("duplicates", "duplicates on one connection", False),
)


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}"


def _behaviours(result: SimResult) -> str:
    items = result.config.behaviours
    if len(items) == 1:
        return items[0][0]
    return ", ".join(f"{name}={weight:g}" for name, weight in items)


def run_table(result: SimResult) -> Table:
    c = result.config
    table = Table(title="Run", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("devices", f"{c.devices:,} ({_behaviours(result)}), {c.platform}")
    table.add_row("device processes", str(result.processes))
    table.add_row("gateway", f"{c.url}  api {c.api}")
    rate = "as fast as possible" if c.rate == 0 else f"{c.rate:,.0f} msg/s"
    table.add_row("pushes", f"{c.push_type}, {rate}, {c.concurrency} requests in flight")
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
    table.add_row("phases", phases)
    fleet = result.counts
    table.add_row(
        "connections",
        f"{fleet.connects:,} welcomes ({fleet.away:,} after a fail-over),"
        f" {fleet.disconnects:,} disconnects,"
        f" {fleet.storms} storms, {fleet.ever_connected:,}/{fleet.devices:,} devices connected",
    )
    return table


def throughput_table(result: SimResult) -> Table:
    d, v = result.driver, result.verdict
    table = Table(title="Throughput", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("messages accepted", f"{d.messages:,} in {d.requests:,} requests")
    table.add_row("push rate", f"{result.push_rate:,.0f} msg/s")
    table.add_row("deliveries", f"{v.delivered:,}")
    table.add_row("delivery rate", f"{result.delivery_rate:,.0f} /s")
    problems = sum(d.rejected.values()) + sum(d.failed.values())
    detail = ", ".join(f"{k}: {n}" for k, n in {**d.rejected, **d.failed}.items())
    table.add_row(
        "requests refused or failed", f"{problems:,}" + (f" ({detail})" if detail else "")
    )
    table.add_row("retries / 429s", f"{d.retries:,} / {d.rate_limited:,}")
    return table


def latency_table(result: SimResult) -> Table:
    table = Table(title="Latency (ms)", title_justify="left")
    table.add_column("")
    for name in ("count", "p50", "p90", "p99", "max"):
        table.add_column(name, justify="right")
    rows = (
        ("push → receive", result.verdict.receive_latency),
        ("push → ack", result.verdict.ack_latency),
        ("API answer", LatencyStats.of(result.driver.api_latencies)),
    )
    for label, stats in rows:
        table.add_row(
            label,
            f"{stats.count:,}",
            _ms(stats.p50),
            _ms(stats.p90),
            _ms(stats.p99),
            _ms(stats.max),
        )
    return table


def verdict_table(result: SimResult) -> Table:
    v = result.verdict
    table = Table(title="Delivery oracle", title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for name, label, is_failure in VERDICT_ROWS:
        count = int(getattr(v, name))
        style = "bold red" if is_failure and count else ("green" if is_failure else "")
        table.add_row(label, Text(f"{count:,}", style=style))
    return table


def examples_text(result: SimResult) -> Text:
    text = Text()
    for category, pairs in result.verdict.examples.items():
        if category in result.verdict.failures:
            sample = ", ".join(f"{m} @ {d}" for m, d in pairs[:5])
            text.append(f"{category}: {sample}\n", style="red")
    return text


def render(result: SimResult, console: Console) -> None:
    """Print the report's tables and the verdict line."""
    tables = [run_table(result), throughput_table(result), latency_table(result)]
    console.print(Group(*tables, verdict_table(result)))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(examples_text(result), end="")
    if result.ok:
        console.print("[bold green]PASS[/]: no loss, no misdelivery, nothing after expiry")
    else:
        found = ", ".join(f"{n} {name}" for name, n in result.verdict.failures.items())
        console.print(f"[bold red]FAIL[/]: {found}")


def to_dict(result: SimResult) -> dict[str, Any]:
    """Everything in the report, JSON-ready."""
    config = asdict(result.config)
    config.pop("api_key")
    config.pop("secret")
    return {
        "ok": result.ok,
        "config": config,
        "prefix": result.prefix,
        "processes": result.processes,
        "started_ms": result.started_ms,
        "ended_ms": result.ended_ms,
        "phases": result.phases,
        "push_rate": result.push_rate,
        "delivery_rate": result.delivery_rate,
        "driver": result.driver.to_dict(),
        "fleet": result.counts.as_dict(),
        "verdict": result.verdict.to_dict(),
        "warnings": result.warnings,
    }


def write_json(result: SimResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(result), indent=2) + "\n")


def plot(result: SimResult, path: str | Path) -> None:
    """A PNG: latency histograms (left) and CDFs (right) of push→receive and push→ack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    v = result.verdict
    series = [
        ("push → receive", np.asarray(v.receive_latencies, dtype=float), "tab:blue"),
        ("push → ack", np.asarray(v.ack_latencies, dtype=float), "tab:orange"),
    ]
    series = [(label, data, colour) for label, data, colour in series if data.size]
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    c = result.config
    fig.suptitle(
        f"pushgate sim: {c.devices:,} devices ({_behaviours(result)}), {c.push_type} pushes,"
        f" {v.messages:,} messages, {v.delivered:,} deliveries"
        + ("" if result.ok else "  — FAIL: " + ", ".join(v.failures))
    )
    if not series:
        hist.text(0.5, 0.5, "no deliveries", ha="center", va="center")
        cdf.text(0.5, 0.5, "no deliveries", ha="center", va="center")
    else:
        low = max(1.0, min(float(data.min()) for _, data, _ in series))
        high = max(low * 10, max(float(data.max()) for _, data, _ in series))
        bins = np.geomspace(low, high, 60)
        for name, data, colour in series:
            p50, p99 = (float(np.percentile(data, q)) for q in (50, 99))
            label = f"{name}  (p50 {p50:,.0f} ms, p99 {p99:,.0f} ms)"
            clipped = np.clip(data, low, high)
            hist.hist(clipped, bins=bins, histtype="stepfilled", alpha=0.18, color=colour)
            hist.hist(clipped, bins=bins, histtype="step", linewidth=1.4, label=label, color=colour)
            ordered = np.sort(clipped)
            fraction = np.arange(1, ordered.size + 1) / ordered.size
            cdf.plot(ordered, fraction, label=label, color=colour)
            for value, style in ((p50, ":"), (p99, "--")):
                cdf.axvline(max(value, low), color=colour, linestyle=style, linewidth=0.8)
        hist.set_xscale("log")
        hist.set_xlabel("latency (ms, log scale)")
        hist.set_ylabel("deliveries")
        hist.set_title("Latency histogram")
        hist.legend(loc="upper left", fontsize="small")
        cdf.set_xscale("log")
        cdf.set_xlabel("latency (ms, log scale)")
        cdf.set_ylabel("fraction of deliveries")
        cdf.set_ylim(0, 1.01)
        cdf.set_title("CDF (dotted: p50, dashed: p99)")
        cdf.grid(True, which="both", alpha=0.3)
        cdf.legend(loc="lower right", fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""`pushgate load push`: the push API's throughput from a running gateway's outside."""

from __future__ import annotations

import math
import time
from typing import Any

import click
import httpx
import trio

from gateway.cli_http import api_options

# --- pushgate load ---------------------------------------------------------------


@click.group("load")
def load_group() -> None:
    """Load generators against a running gateway."""


@load_group.command("push")
@api_options
@click.option("--type", "push_type", type=click.Choice(["simple", "multiple"]), default="simple")
@click.option("--count", type=click.IntRange(1), default=2000, show_default=True, help="API calls.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=32, show_default=True)
@click.option(
    "--targets",
    type=click.IntRange(1, 1000),
    default=1000,
    show_default=True,
    help="Targets per multiple call.",
)
@click.option("--delivery-type", type=click.Choice(["user", "android", "ios"]), default="android")
def load_push(
    api: str,
    key: str,
    push_type: str,
    count: int,
    concurrency: int,
    targets: int,
    delivery_type: str,
) -> None:
    """Measure the push API's throughput: accepted pushes per second.

    Sends COUNT push calls from CONCURRENCY concurrent clients (one message
    per simple call, TARGETS per multiple call, each to its own new target)
    and prints calls/s, accepted messages/s and call latency percentiles.
    """
    report = trio.run(
        _load, api, key, push_type, count, concurrency, targets, delivery_type, time.time_ns()
    )
    click.echo(report.text())
    if report.errors:
        raise click.ClickException(f"{report.errors} call(s) failed; first: {report.first_error}")


class LoadReport:
    def __init__(self, push_type: str, concurrency: int) -> None:
        self.push_type = push_type
        self.concurrency = concurrency
        self.calls = 0
        self.accepted = 0
        self.errors = 0
        self.first_error = ""
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

    def text(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        return (
            f"type={self.push_type} calls={self.calls} errors={self.errors}"
            f" accepted={self.accepted} concurrency={self.concurrency}"
            f" seconds={self.elapsed:.2f}\n"
            f"calls_per_second={self.calls / elapsed:.0f}"
            f" accepted_pushes_per_second={self.accepted / elapsed:.0f}\n"
            f"latency_ms p50={self.percentile(0.5) * 1000:.1f}"
            f" p90={self.percentile(0.9) * 1000:.1f}"
            f" p99={self.percentile(0.99) * 1000:.1f}"
            f" max={max(self.latencies, default=0) * 1000:.1f}"
        )


async def _load(
    api: str,
    key: str,
    push_type: str,
    count: int,
    concurrency: int,
    targets: int,
    delivery_type: str,
    run_id: int,
) -> LoadReport:
    report = LoadReport(push_type, concurrency)
    next_call = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    prefix = f"load-{run_id:x}"

    def body(n: int) -> tuple[str, dict[str, Any]]:
        common = {"delivery_type": delivery_type, "title": "load", "content": f"call {n}"}
        if push_type == "simple":
            return "/v1/push/simple", {**common, "target_id": f"{prefix}-{n}"}
        batch = [{"target_id": f"{prefix}-{n}-{i}"} for i in range(targets)]
        return "/v1/push/multiple", {**common, "targets": batch}

    async with httpx.AsyncClient(
        base_url=api.rstrip("/"),
        headers={"authorization": f"Bearer {key}"},
        timeout=120.0,
        limits=limits,
    ) as client:

        async def worker() -> None:
            for n in next_call:
                path, payload = body(n)
                started = trio.current_time()
                error = ""
                try:
                    response = await client.post(path, json=payload)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    if response.is_success:
                        answer = response.json()
                        report.accepted += len(answer.get("messages", [None]))
                    else:
                        error = f"HTTP {response.status_code} {response.text[:200]}"
                report.latencies.append(trio.current_time() - started)
                report.calls += 1
                if error:
                    report.errors += 1
                    report.first_error = report.first_error or error

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        report.elapsed = trio.current_time() - started
    return report

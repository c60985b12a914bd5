"""Prometheus metrics of one gateway, served as text at `GET /metrics`.

Counting happens on the hot paths (every push, write and ack), so it is plain
int arithmetic on this object: a prometheus_client Counter or Histogram takes
a lock and walks a few objects per update, which cost several µs per message.
The values become Prometheus families only when `/metrics` is scraped (a
custom collector on this gateway's own CollectorRegistry, never the
process-global one, so tests can run many gateways in one process). The hub,
the sessions and the store's writer thread report through one-line hooks;
nothing here awaits.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from gateway.channels import SendResult
from gateway.clock import Clock, SystemClock
from gateway.ids import created_ms_of
from gateway.store import PushOutcome

log = logging.getLogger("pushgate.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST

ACK_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
VENDOR_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

__all__ = ["CONTENT_TYPE", "Count", "Histogram", "Metrics", "created_ms_of"]


class Count:
    """A monotonic counter: a plain number, read at scrape time."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class Histogram:
    """Observations counted per bucket (not cumulative: summed at scrape time)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Prometheus buckets are `le`: the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs, as Prometheus wants them."""
        buckets: list[tuple[str, float]] = []
        total = 0
        labels = [*(_go_float(b) for b in self.bounds), "+Inf"]
        for label, count in zip(labels, self.counts, strict=True):
            total += count
            buckets.append((label, float(total)))
        return buckets

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        return HistogramMetricFamily(
            name, documentation, buckets=self.buckets(), sum_value=self.sum
        )


def _go_float(bound: float) -> str:
    """A bucket's `le` label as prometheus_client writes it ("1.0", "2.5")."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class Metrics:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._online: Callable[[], int] = lambda: 0
        self.pushes: dict[str, int] = {}  # by push_type
        self.sent = 0
        self.acks = 0
        self.ack_latency = Histogram(ACK_LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_SIZE_BUCKETS)
        self.commit_seconds = Histogram(COMMIT_BUCKETS)
        self.purged = Count()
        self.rate_limited = Count()
        # Vendor channels (gateway/fallback.py): by vendor, and by (vendor, code).
        self.vendor_sends: dict[str, int] = {}
        self.vendor_answers: dict[tuple[str, str], int] = {}
        self.vendor_seconds: dict[str, Histogram] = {}
        self.vendor_fast_failures: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(_Exporter(self))

    # --- hooks (never await, never raise) ----------------------------------------

    def watch_online(self, count: Callable[[], int]) -> None:
        self._online = count

    def push_accepted(self, outcome: PushOutcome) -> None:
        if not outcome.duplicate:
            push_type = outcome.message.push_type
            self.pushes[push_type] = self.pushes.get(push_type, 0) + 1

    def pushes_sent(self, count: int) -> None:
        self.sent += count

    def acked(self, message_ids: Sequence[str], acked: int) -> None:
        """`acked` of `message_ids` changed to status 2 just now.

        The latency is observed only when every id of the frame was a fresh
        ack (the usual case): then each id is known to be one that changed.
        """
        if acked <= 0:
            return
        self.acks += acked
        unique = set(message_ids)
        if len(unique) != acked:
            return
        now = self.clock.now_ms()
        observe = self.ack_latency.observe
        for message_id in unique:
            created = created_ms_of(message_id)
            if created is not None:
                observe(max(0, now - created) / 1000)

    def vendor_answered(self, vendor: str, results: Sequence[SendResult], seconds: float) -> None:
        """One send to `vendor` answered `results` after `seconds` (no token, no secret)."""
        sent = sum(1 for r in results if r.sent)
        if sent:
            self.vendor_sends[vendor] = self.vendor_sends.get(vendor, 0) + sent
        for result in results:
            key = (vendor, str(result.code))
            self.vendor_answers[key] = self.vendor_answers.get(key, 0) + 1
        histogram = self.vendor_seconds.get(vendor)
        if histogram is None:
            histogram = self.vendor_seconds[vendor] = Histogram(VENDOR_SECONDS_BUCKETS)
        histogram.observe(seconds)

    def vendor_fast_failed(self, vendor: str, calls: int) -> None:
        if calls > 0:
            self.vendor_fast_failures[vendor] = self.vendor_fast_failures.get(vendor, 0) + calls

    def store_commit(self, batch_size: int, seconds: float) -> None:
        """Called on the store's writer thread after each commit."""
        try:
            self.batch_size.observe(batch_size)
            self.commit_seconds.observe(seconds)
        except Exception:  # a metrics bug must never stop the writer
            log.exception("event=metrics_failed")

    # --- exposition ----------------------------------------------------------------

    def families(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "pushgate_connections_online",
            "Device connections that completed hello.",
            value=float(self._online()),
        )
        pushes = CounterMetricFamily(
            "pushgate_pushes_accepted",
            "Messages stored by the push API (one per target; duplicates not counted).",
            labels=["push_type"],
        )
        for push_type, count in sorted(self.pushes.items()):
            pushes.add_metric([push_type], float(count))
        yield pushes
        yield CounterMetricFamily(
            "pushgate_deliveries_sent",
            "Push frames written to device connections (re-sends included).",
            value=float(self.sent),
        )
        yield CounterMetricFamily(
            "pushgate_acks",
            "Deliveries acked by devices (status 0 to 2; repeated acks not counted).",
            value=float(self.acks),
        )
        yield self.ack_latency.family(
            "pushgate_ack_latency_seconds",
            "Time from a message's creation to a device's ack of it.",
        )
        yield self.batch_size.family(
            "pushgate_store_batch_size", "Operations per group commit of the store."
        )
        yield self.commit_seconds.family(
            "pushgate_store_commit_seconds",
            "Duration of one group commit of the store (all its operations and the fsync).",
        )
        yield CounterMetricFamily(
            "pushgate_messages_purged",
            "Messages deleted by the 30-day retention sweeper.",
            value=float(self.purged.value),
        )
        yield CounterMetricFamily(
            "pushgate_api_rate_limited",
            "API calls answered 429 by the per-app rate limit.",
            value=float(self.rate_limited.value),
        )
        yield from self._vendor_families()

    def _vendor_families(self) -> Iterator[Metric]:
        sends = CounterMetricFamily(
            "pushgate_vendor_sends",
            "Deliveries sent to a vendor channel (requests that reached the vendor).",
            labels=["vendor"],
        )
        for vendor, count in sorted(self.vendor_sends.items()):
            sends.add_metric([vendor], float(count))
        yield sends
        answers = CounterMetricFamily(
            "pushgate_vendor_answers",
            "Results of vendor deliveries by the seeds' code (2: accepted).",
            labels=["vendor", "code"],
        )
        for (vendor, code), count in sorted(self.vendor_answers.items()):
            answers.add_metric([vendor, code], float(count))
        yield answers
        seconds = HistogramMetricFamily(
            "pushgate_vendor_send_seconds",
            "Duration of one send to a vendor (a group of deliveries, retries included).",
            labels=["vendor"],
        )
        for vendor, histogram in sorted(self.vendor_seconds.items()):
            seconds.add_metric([vendor], histogram.buckets(), histogram.sum)
        yield seconds
        fast = CounterMetricFamily(
            "pushgate_vendor_fast_failures",
            "Vendor calls refused at once (circuit open, too many waiting), by vendor.",
            labels=["vendor"],
        )
        for vendor, count in sorted(self.vendor_fast_failures.items()):
            fast.add_metric([vendor], float(count))
        yield fast

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Exporter(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.families()


def with_label(text: bytes, name: str, value: str) -> bytes:
    """Prometheus text with `name="value"` added to every sample (many nodes: `node`)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    label = f'{name}="{escaped}"'.encode()
    out: list[bytes] = []
    for line in text.split(b"\n"):
        if line and not line.startswith(b"#"):
            head, sep, rest = line.partition(b"{")
            if sep:
                line = head + b"{" + label + (b"," if not rest.startswith(b"}") else b"") + rest
            else:
                metric, space, sample = line.partition(b" ")
                line = metric + b"{" + label + b"}" + space + sample
        out.append(line)
    return b"\n".join(out)

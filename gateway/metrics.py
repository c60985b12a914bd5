"""Prometheus metrics of one gateway, served as text at `GET /metrics`.

Each Gateway has its own CollectorRegistry (never the process-global one),
so tests can run many gateways in one process. The hub, the sessions and the
store's writer thread report through one-line hooks; nothing here awaits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.channels import SendResult
from gateway.clock import Clock, SystemClock
from gateway.ids import created_ms_of
from gateway.store import PushOutcome

log = logging.getLogger("pushgate.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST

ACK_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

__all__ = ["CONTENT_TYPE", "Metrics", "created_ms_of"]


class Metrics:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.registry = CollectorRegistry()
        r = self.registry
        self.online = Gauge(
            "pushgate_connections_online",
            "Device connections that completed hello.",
            registry=r,
        )
        self.pushes = Counter(
            "pushgate_pushes_accepted",
            "Messages stored by the push API (one per target; duplicates not counted).",
            ["push_type"],
            registry=r,
        )
        self.sent = Counter(
            "pushgate_deliveries_sent",
            "Push frames written to device connections (re-sends included).",
            registry=r,
        )
        self.acks = Counter(
            "pushgate_acks",
            "Deliveries acked by devices (status 0 to 2; repeated acks not counted).",
            registry=r,
        )
        self.ack_latency = Histogram(
            "pushgate_ack_latency_seconds",
            "Time from a message's creation to a device's ack of it.",
            buckets=ACK_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "pushgate_store_batch_size",
            "Operations per group commit of the store.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "pushgate_store_commit_seconds",
            "Duration of one group commit of the store (all its operations and the fsync).",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.purged = Counter(
            "pushgate_messages_purged",
            "Messages deleted by the 30-day retention sweeper.",
            registry=r,
        )
        self.vendor_sends = Counter(
            "pushgate_vendor_sends",
            "Deliveries sent to a vendor channel (requests that reached the vendor).",
            ["vendor"],
            registry=r,
        )
        self.vendor_answers = Counter(
            "pushgate_vendor_answers",
            "Results of vendor deliveries by the seeds' code (2: accepted).",
            ["vendor", "code"],
            registry=r,
        )
        self.vendor_seconds = Histogram(
            "pushgate_vendor_send_seconds",
            "Duration of one send to a vendor (a group of deliveries, retries included).",
            ["vendor"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.vendor_fast_failures = Counter(
            "pushgate_vendor_fast_failures",
            "Vendor calls refused at once (circuit open, too many waiting), by vendor.",
            ["vendor"],
            registry=r,
        )
        self.rate_limited = Counter(
            "pushgate_api_rate_limited",
            "API calls answered 429 by the per-app rate limit.",
            registry=r,
        )

    # --- hooks (never await, never raise) ----------------------------------------

    def watch_online(self, count: Callable[[], int]) -> None:
        self.online.set_function(lambda: float(count()))

    def push_accepted(self, outcome: PushOutcome) -> None:
        if not outcome.duplicate:
            self.pushes.labels(push_type=outcome.message.push_type).inc()

    def pushes_sent(self, count: int) -> None:
        if count:
            self.sent.inc(count)

    def acked(self, message_ids: Sequence[str], acked: int) -> None:
        """`acked` of `message_ids` changed to status 2 just now.

        The latency is observed only when every id of the frame was a fresh
        ack (the usual case): then each id is known to be one that changed.
        """
        if acked <= 0:
            return
        self.acks.inc(acked)
        unique = set(message_ids)
        if len(unique) != acked:
            return
        now = self.clock.now_ms()
        for message_id in unique:
            created = created_ms_of(message_id)
            if created is not None:
                self.ack_latency.observe(max(0, now - created) / 1000)

    def vendor_answered(self, vendor: str, results: Sequence[SendResult], seconds: float) -> None:
        """One send to `vendor` answered `results` after `seconds` (no token, no secret)."""
        sent = sum(1 for r in results if r.sent)
        if sent:
            self.vendor_sends.labels(vendor=vendor).inc(sent)
        for result in results:
            self.vendor_answers.labels(vendor=vendor, code=str(result.code)).inc()
        self.vendor_seconds.labels(vendor=vendor).observe(seconds)

    def vendor_fast_failed(self, vendor: str, calls: int) -> None:
        if calls > 0:
            self.vendor_fast_failures.labels(vendor=vendor).inc(calls)

    def store_commit(self, batch_size: int, seconds: float) -> None:
        """Called on the store's writer thread after each commit."""
        try:
            self.batch_size.observe(batch_size)
            self.commit_seconds.observe(seconds)
        except Exception:  # a metrics bug must never stop the writer
            log.exception("event=metrics_failed")

    # --- exposition ----------------------------------------------------------------

    def render(self) -> bytes:
        return generate_latest(self.registry)

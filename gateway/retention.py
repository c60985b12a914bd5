"""The 30-day retention purge: a background task that deletes records older than 30 days.

Every `interval` seconds (and once at start) it deletes the messages whose
created_at is before now - 30 days by the gateway's clock, with their
deliveries, at most `max_rows` rows of each table per store operation. Each
operation is one small piece of work in the writer's queue, so pushes and acks
queued meanwhile commit between them: old broadcasts with 20,000 deliveries
each never block delivery for long.

Reads never depend on the purge having run: the list, the search and the
push details already hide what is older than 30 days.
"""

from __future__ import annotations

import logging

import trio

from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.store import Store, StoreUnavailable, retention_cutoff

log = logging.getLogger("pushgate.retention")

DEFAULT_MAX_ROWS = 1000


class RetentionPurge:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        interval: float = 60.0,
        max_rows: int = DEFAULT_MAX_ROWS,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.max_rows = max_rows
        self.metrics = metrics
        self.runs = 0
        self.purged_total = 0
        self._scope = trio.CancelScope()
        self._lock = trio.Lock()

    async def purge_once(self) -> int:
        """Purge everything older than the retention window now; returns how many messages."""
        async with self._lock:
            cutoff = retention_cutoff(self.clock.now_ms())
            messages = deliveries = 0
            while True:
                gone, gone_deliveries = await self.store.purge_before(cutoff, self.max_rows)
                if not gone and not gone_deliveries:
                    break
                messages += gone
                deliveries += gone_deliveries
                if self.metrics is not None and gone:
                    self.metrics.purged.inc(gone)
            self.runs += 1
            self.purged_total += messages
        if messages or deliveries:
            log.info(
                "event=retention_purged messages=%d deliveries=%d cutoff=%d",
                messages,
                deliveries,
                cutoff,
            )
        return messages

    async def run(self) -> None:
        """Purge at start, then every `interval` seconds, until stop()."""
        with self._scope:
            while True:
                try:
                    await self.purge_once()
                except StoreUnavailable as exc:
                    log.warning("event=retention_purge_failed error=%r", str(exc))
                await trio.sleep(self.interval)

    def stop(self) -> None:
        self._scope.cancel()

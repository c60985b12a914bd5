"""Retention: a background task that purges records older than 30 days.

Every `interval` seconds (and once at start) the sweeper deletes messages
whose created_at is before now - 30 days by the gateway's clock, with their
deliveries, `batch` messages per store operation. Each batch is one small
operation in the writer's queue, so pushes and acks queued meanwhile commit
between batches: a large backlog of old rows never blocks delivery for long.

Reads never depend on the sweeper having run: the list, the search and the
push details already hide what is older than 30 days (store/listing.py).
"""

from __future__ import annotations

import logging

import trio

from gateway.clock import Clock
from gateway.metrics import Metrics
from gateway.store import Store, StoreUnavailable
from gateway.store.listing import retention_cutoff

log = logging.getLogger("pushgate.sweeper")

DEFAULT_BATCH = 500


class Sweeper:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        interval: float = 60.0,
        batch: int = DEFAULT_BATCH,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval = interval
        self.batch = batch
        self.metrics = metrics
        self.sweeps = 0
        self.purged_total = 0
        self._scope = trio.CancelScope()
        self._lock = trio.Lock()

    async def sweep_once(self) -> int:
        """Purge everything older than the retention window now; returns how many messages."""
        async with self._lock:
            cutoff = retention_cutoff(self.clock.now_ms())
            purged = 0
            while True:
                count = await self.store.purge_before(cutoff, self.batch)
                purged += count
                if self.metrics is not None and count:
                    self.metrics.purged.inc(count)
                if count < self.batch:
                    break
                await trio.lowlevel.checkpoint()
            self.sweeps += 1
            self.purged_total += purged
        if purged:
            log.info("event=retention_purged messages=%d cutoff=%d", purged, cutoff)
        return purged

    async def run(self) -> None:
        """Sweep at start, then every `interval` seconds, until stop()."""
        with self._scope:
            while True:
                try:
                    await self.sweep_once()
                except StoreUnavailable as exc:
                    log.warning("event=retention_sweep_failed error=%r", str(exc))
                await trio.sleep(self.interval)

    def stop(self) -> None:
        self._scope.cancel()

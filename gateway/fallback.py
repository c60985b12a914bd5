"""The fallback sender: deliveries the self-built channel did not get acked in time
go out through the device's vendor (CONTRACT §6).

The schedule lives in the store (vendor_schema.py): every pending delivery of
a device with a vendor registration has a due time, `fallback_after_seconds`
after it was stored. This task claims due rows in bounded batches with a lease
(a claim id and a due time one lease ahead), sends each (app, vendor) group
through the `ChannelDirectory`, and records every answer on its delivery. A
crash between claim and answer leaves rows that fall due again when the lease
ends, so they are sent after a restart; nodes sharing a store never claim the
same row at once. Sends are at-least-once: the vendor payload carries the
message id for the app to de-duplicate.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Sequence

import trio

from gateway.channels import KeyringError, SendResult, VendorDelivery, VendorMessage
from gateway.clock import Clock
from gateway.ids import new_id
from gateway.metrics import Metrics
from gateway.store import FallbackClaim, FallbackOutcome, Store, StoreUnavailable
from gateway.vendor_channels import ChannelKeyMissing, VendorChannels
from gateway.vendor_settings import FallbackSettings
from protocol import Status

log = logging.getLogger("pushgate.fallback")

MAX_ATTEMPTS = 8  # sends of one delivery answered transiently, then it is left
MAX_BACKOFF_S = 300.0


def retry_delay(result: SendResult, attempts: int) -> float:
    """Seconds before a transient answer is tried again.

    Not sent (an open circuit, a full bound): when the directory says it may be
    tried (at least a moment). Sent: doubling from 1 s per claim, or the vendor's
    Retry-After when longer, at most MAX_BACKOFF_S.
    """
    if not result.sent and result.retry_after is not None:
        return max(0.5, result.retry_after)
    backoff = min(MAX_BACKOFF_S, 2.0 ** min(max(attempts - 1, 0), 16))
    return max(result.retry_after or 0.0, backoff)


def outcome_for(claim: FallbackClaim, result: SendResult, now_ms: int) -> FallbackOutcome:
    retry_at = None
    # What never reached the vendor (open circuit) waits for it until expiry.
    if result.transient and (not result.sent or claim.attempts < MAX_ATTEMPTS):
        at = now_ms + int(retry_delay(result, claim.attempts) * 1000)
        retry_at = at if at < claim.expires_at else None
    return FallbackOutcome(
        claim, result.code, result.raw, dead_token=result.dead_token, retry_at=retry_at
    )


def _delivery(claim: FallbackClaim) -> VendorDelivery:
    message = VendorMessage(
        message_id=claim.message_id,
        msg_key=claim.msg_key,
        title=claim.title,
        content=claim.content,
        expires_ms=claim.expires_at,
        ext=claim.ext,
    )
    return VendorDelivery(message, claim.token)


class FallbackSender:
    def __init__(
        self,
        store: Store,
        channels: VendorChannels,
        clock: Clock,
        metrics: Metrics,
        settings: FallbackSettings | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.metrics = metrics
        self.settings = settings or FallbackSettings()
        self.node = new_id(clock.now_ms())
        self._claims = itertools.count(1)
        self._slots = trio.Semaphore(self.settings.groups)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Claim and send until cancelled (owned by the server's nursery)."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                claimed = await self._claim()
                if not claimed:
                    await trio.sleep(self.settings.interval)
                    continue
                groups: defaultdict[tuple[str, str], list[FallbackClaim]] = defaultdict(list)
                for claim in claimed:
                    groups[(claim.app_id, claim.vendor)].append(claim)
                for (app_id, vendor), claims in groups.items():
                    await self._slots.acquire()  # a bounded number of groups at once
                    nursery.start_soon(self._send_group, app_id, vendor, claims)
                await trio.lowlevel.checkpoint()

    async def _claim(self) -> list[FallbackClaim]:
        owner = f"{self.node}:{next(self._claims)}"
        lease_ms = int(self.settings.lease * 1000)
        try:
            return await self.store.claim_fallbacks(owner, lease_ms, self.settings.batch)
        except StoreUnavailable as exc:
            log.warning("event=fallback_claim_failed error=%r", str(exc)[:200])
            return []
        except Exception:  # never the whole gateway for it; tried again next interval
            log.exception("event=fallback_claim_crashed")
            return []

    async def _send_group(self, app_id: str, vendor: str, claims: Sequence[FallbackClaim]) -> None:
        try:
            results = await self._send(app_id, vendor, claims)
            now = self.clock.now_ms()
            outcomes = [outcome_for(c, r, now) for c, r in zip(claims, results, strict=True)]
            await self.store.finish_fallbacks(outcomes)
        except StoreUnavailable as exc:  # the lease ends and they are claimed again
            log.warning("event=fallback_record_failed app=%s error=%r", app_id, str(exc)[:200])
        except Exception:
            # A bug must not end the gateway: the rows wait for their lease to end.
            log.exception("event=fallback_send_crashed app=%s vendor=%s", app_id, vendor)
        finally:
            self._slots.release()

    async def _send(
        self, app_id: str, vendor: str, claims: Sequence[FallbackClaim]
    ) -> list[SendResult]:
        version = max(c.channel_version for c in claims)
        try:
            await self.channels.ensure(app_id, vendor, version)
        except (ChannelKeyMissing, KeyringError) as exc:
            log.error(
                "event=channel_unreadable app=%s vendor=%s error=%r", app_id, vendor, str(exc)
            )
            reason = f"local: the stored credentials cannot be read ({exc})"
            failed = SendResult(vendor, int(Status.NONE), reason, transient=True, sent=False)
            return [failed] * len(claims)
        if not self.channels.directory.configured(app_id, vendor):  # deleted meanwhile
            gone = SendResult(vendor, int(Status.NONE), "local: no channel", transient=True)
            return [gone] * len(claims)
        statistics = self.channels.directory.statistics
        fast_before, started = statistics.fast_failures[vendor], trio.current_time()
        results = await self.channels.directory.send(app_id, vendor, [_delivery(c) for c in claims])
        seconds = trio.current_time() - started
        self.metrics.vendor_answered(vendor, results, seconds)
        # Refused at once by an open circuit or a full bulkhead: the vendor was spared.
        self.metrics.vendor_fast_failed(vendor, statistics.fast_failures[vendor] - fast_before)
        codes = sorted({r.code for r in results})
        log.info(
            "event=vendor_sent app=%s vendor=%s deliveries=%d codes=%s seconds=%.3f",
            app_id,
            vendor,
            len(claims),
            ",".join(map(str, codes)),
            seconds,
        )
        return results

"""Every app's vendor channels, each behind its own breaker, bulkhead and retry
policy: the one object the gateway sends through.

`send(app_id, vendor, deliveries)` splits the deliveries into the vendor's
batches, sends them concurrently within that (app, vendor)'s bound, retries
transient answers, and answers one `SendResult` per delivery, in order. It
never raises for a vendor's behaviour, and an outage of one (app, vendor) fails
fast there without slowing any other.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import trio

from gateway.clock import Clock

from .apns import ApnsChannel
from .base import Channel
from .credentials import (
    ApnsCredentials,
    Credentials,
    FcmCredentials,
    HuaweiCredentials,
    OppoCredentials,
    VivoCredentials,
    XiaomiCredentials,
)
from .fcm import FcmChannel
from .http import HttpOptions
from .huawei import HuaweiChannel
from .message import VendorDelivery
from .oppo import OppoChannel
from .resilience import Bulkhead, CircuitBreaker, RetryPolicy
from .result import SendResult, refused, unsent
from .vivo import VivoChannel
from .xiaomi import XiaomiChannel

log = logging.getLogger("pushgate.channels")


def open_channel(
    app_id: str, credentials: Credentials, clock: Clock, options: HttpOptions
) -> Channel:
    """The adapter for `credentials`' vendor (its connections open on first use)."""
    match credentials:
        case ApnsCredentials():
            return ApnsChannel(app_id, credentials, clock, options)
        case FcmCredentials():
            return FcmChannel(app_id, credentials, clock, options)
        case HuaweiCredentials():
            return HuaweiChannel(app_id, credentials, clock, options)
        case XiaomiCredentials():
            return XiaomiChannel(app_id, credentials, clock, options)
        case OppoCredentials():
            return OppoChannel(app_id, credentials, clock, options)
        case VivoCredentials():
            return VivoChannel(app_id, credentials, clock, options)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """The bounds each (app, vendor) gets."""

    max_concurrent: int = 8
    max_waiting: int = 1000
    failure_threshold: int = 5
    open_seconds: float = 10.0
    max_open_seconds: float = 300.0
    call_timeout: float = 30.0  # one vendor call, whatever the adapter's own timeouts
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(slots=True)
class ChannelStatistics:
    """Counts for metrics: calls, results by code, time spent, per vendor."""

    calls: Counter[str] = field(default_factory=Counter)
    results: Counter[tuple[str, int]] = field(default_factory=Counter)
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    retries: Counter[str] = field(default_factory=Counter)
    fast_failures: Counter[str] = field(default_factory=Counter)


class GuardedChannel:
    """One (app, vendor)'s channel with its own breaker and bulkhead."""

    def __init__(self, channel: Channel, settings: GuardSettings) -> None:
        self.channel = channel
        self.breaker = CircuitBreaker(
            settings.failure_threshold, settings.open_seconds, settings.max_open_seconds
        )
        self.bulkhead = Bulkhead(settings.max_concurrent, settings.max_waiting)
        self.retired = False  # replaced or removed: closes when its last call ends
        self.users = 0

    async def retire(self) -> None:
        self.retired = True
        if self.users == 0:
            await self.close()

    async def close(self) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self.channel.aclose()


class ChannelDirectory:
    """`(app_id, vendor) → channel`; use as `async with ChannelDirectory(...)` so every
    connection is closed at the end."""

    def __init__(
        self,
        clock: Clock,
        options: HttpOptions | None = None,
        settings: GuardSettings | None = None,
        opener: Callable[[str, Credentials, Clock, HttpOptions], Channel] = open_channel,
    ) -> None:
        self._clock = clock
        self._options = options or HttpOptions()
        self._settings = settings or GuardSettings()
        self._opener = opener
        self._channels: dict[tuple[str, str], GuardedChannel] = {}
        self.statistics = ChannelStatistics()

    async def __aenter__(self) -> ChannelDirectory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for guarded in channels:
            await guarded.close()

    async def configure(self, app_id: str, credentials: Credentials) -> None:
        """Use `credentials` for `app_id` from now on (replacing any earlier ones)."""
        await self.remove(app_id, credentials.vendor)
        channel = self._opener(app_id, credentials, self._clock, self._options)
        self._channels[(app_id, credentials.vendor)] = GuardedChannel(channel, self._settings)

    async def remove(self, app_id: str, vendor: str) -> None:
        """Stop using `app_id`'s `vendor` channel; calls already under way finish on it."""
        guarded = self._channels.pop((app_id, vendor), None)
        if guarded is not None:
            await guarded.retire()

    def configured(self, app_id: str, vendor: str) -> bool:
        return (app_id, vendor) in self._channels

    def guarded(self, app_id: str, vendor: str) -> GuardedChannel | None:
        """The channel with its breaker and bulkhead, for statistics and health."""
        return self._channels.get((app_id, vendor))

    async def send(
        self, app_id: str, vendor: str, deliveries: Sequence[VendorDelivery]
    ) -> list[SendResult]:
        """One result per delivery, in order (see the module's docstring).

        Raises `KeyError` if `app_id` has no channel for `vendor` configured.
        """
        guarded = self._channels[(app_id, vendor)]
        size = guarded.channel.max_batch
        results: list[SendResult | None] = [None] * len(deliveries)
        starts = range(0, len(deliveries), size)
        pending = iter(starts)

        async def worker() -> None:
            for start in pending:  # shared: each batch is taken by one worker
                batch = deliveries[start : start + size]
                for offset, result in enumerate(await self._send_batch(guarded, batch)):
                    results[start + offset] = result

        # No more workers than the bound lets run: a large call queues here, in order,
        # rather than in the bulkhead, whose waiting room is for concurrent callers.
        async with trio.open_nursery() as nursery:
            for _ in range(min(len(starts), self._settings.max_concurrent)):
                nursery.start_soon(worker)
        return [r for r in results if r is not None]

    async def _send_batch(
        self, guarded: GuardedChannel, batch: Sequence[VendorDelivery]
    ) -> list[SendResult]:
        channel = guarded.channel
        retry = self._settings.retry
        results, called = await self._attempt(guarded, batch)
        attempt = 1
        while called:  # a fast failure (open circuit, full bulkhead) returns at once
            pending = [i for i, r in enumerate(results) if r.transient]
            if not pending:
                break
            retry_after = max((results[i].retry_after or 0.0) for i in pending)
            wait = retry.delay(attempt, retry_after)
            if wait is None:
                break
            attempt += 1
            self.statistics.retries[channel.vendor] += len(pending)
            await trio.sleep(wait)
            again, called = await self._attempt(guarded, [batch[i] for i in pending])
            for i, result in zip(pending, again, strict=True):
                results[i] = result
        for result in results:
            self.statistics.results[(channel.vendor, result.code)] += 1
        return results

    async def _attempt(
        self, guarded: GuardedChannel, batch: Sequence[VendorDelivery]
    ) -> tuple[list[SendResult], bool]:
        """The results, and whether the vendor was called (False: failed fast)."""
        channel = guarded.channel

        def fast_failure(reason: str, retry_after: float) -> tuple[list[SendResult], bool]:
            self.statistics.fast_failures[channel.vendor] += 1
            result = unsent(channel.vendor, channel.unavailable_code, reason, retry_after)
            return [result] * len(batch), False

        if guarded.retired:
            return fast_failure("the channel was reconfigured or removed", 0.0)
        wait = guarded.breaker.admit()
        if wait is not None:
            return fast_failure("circuit open: the vendor failed repeatedly", wait)
        if not await guarded.bulkhead.acquire():
            guarded.breaker.abandoned()
            return fast_failure("too many requests waiting for this vendor", 1.0)
        outcome: list[SendResult] | None = None
        started = trio.current_time()
        guarded.users += 1
        try:
            with trio.move_on_after(self._settings.call_timeout):
                outcome = await channel.send(batch)
        finally:
            guarded.users -= 1
            if guarded.retired and guarded.users == 0:
                await guarded.close()
            guarded.bulkhead.release()
            self.statistics.calls[channel.vendor] += 1
            self.statistics.seconds[channel.vendor] += trio.current_time() - started
            if outcome is None:
                guarded.breaker.abandoned()
        if outcome is None:
            guarded.breaker.failed()
            reason = f"no answer within {self._settings.call_timeout:g} s"
            timeout = refused(channel.vendor, channel.unavailable_code, reason, transient=True)
            return [timeout] * len(batch), True
        if all(r.transient for r in outcome):  # the vendor, not a delivery, is in trouble
            guarded.breaker.failed()
        else:
            guarded.breaker.succeeded()
        return outcome, True

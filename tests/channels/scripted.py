"""A Channel whose answers a test scripts, for the resilience layer's own tests
(the vendor adapters are tested against their stand-ins)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio
import trio.lowlevel

from gateway.channels import Credentials, HttpOptions, SendResult, VendorDelivery
from gateway.channels.result import accepted, refused
from gateway.clock import Clock

Script = Callable[[int], SendResult | None]  # call number → result; None: hang


class ScriptedChannel:
    vendor = "xiaomi"
    max_batch = 1
    unavailable_code: int | None = None

    def __init__(self, script: Script) -> None:
        self.script = script
        self.calls: list[float] = []  # trio time of each call
        self.in_flight = 0
        self.max_in_flight = 0
        self.release = trio.Event()  # for scripts that answer only once released
        self.closed = False

    async def send(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        self.calls.append(trio.current_time())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            result = self.script(len(self.calls))
            if result is None:
                await self.release.wait()
                result = accepted(self.vendor)
            await trio.lowlevel.checkpoint()
            return [result] * len(batch)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        self.closed = True


def opener_for(
    channel: ScriptedChannel,
) -> Callable[[str, Credentials, Clock, HttpOptions], ScriptedChannel]:
    def opener(
        app_id: str, credentials: Credentials, clock: Clock, options: HttpOptions
    ) -> ScriptedChannel:
        return channel

    return opener


def ok(n: int) -> SendResult:
    return accepted("xiaomi")


def busy(retry_after: float | None = None) -> SendResult:
    return refused("xiaomi", 10027, "busy", transient=True, retry_after=retry_after)


def dead() -> SendResult:
    return refused("xiaomi", 20301, "invalid target", dead_token=True)

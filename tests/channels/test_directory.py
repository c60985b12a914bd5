"""The directory against real stand-ins: a vendor outage opens that (app, vendor)'s
breaker and fails fast while another vendor goes on; sends resume after it; the
concurrency bound holds on the wire."""

from __future__ import annotations

import pytest
import trio
import trio.testing
import trustme

from gateway.channels import (
    BreakerState,
    ChannelDirectory,
    GuardSettings,
    RetryPolicy,
    VendorDelivery,
)
from gateway.clock import ManualClock

from .envs import APP, vendor_env
from .standins.http1 import Reply
from .standins.xiaomi import SEND_PATH


@pytest.fixture
def stepping_clock() -> trio.testing.MockClock:
    """Runs at real speed (timeouts work) and jumps ahead when a test says so."""
    return trio.testing.MockClock(rate=1.0)


async def test_outage_opens_the_breaker_and_spares_other_vendors(
    wall: ManualClock, ca: trustme.CA, stepping_clock: trio.testing.MockClock
) -> None:
    settings = GuardSettings(
        failure_threshold=3, open_seconds=30, retry=RetryPolicy(max_attempts=1)
    )
    async with (
        vendor_env("xiaomi", wall, ca) as mi,
        vendor_env("oppo", wall, ca) as oppo,
        ChannelDirectory(wall, mi.options, settings) as directory,
    ):
        await directory.configure(APP, mi.credentials)
        await directory.configure(APP, oppo.credentials)
        to_mi = [VendorDelivery(mi.message(), mi.token)]
        to_oppo = [VendorDelivery(oppo.message(), oppo.token)]
        mi.standin.answers[mi.token] = Reply(b"upstream down", 503, content_type="text/plain")
        with trio.fail_after(120):
            for _ in range(3):
                (down,) = await directory.send(APP, "xiaomi", to_mi)
                assert (down.code, down.transient) == (99999999, True)
            guarded = directory.guarded(APP, "xiaomi")
            assert guarded is not None and guarded.breaker.state is BreakerState.OPEN
            (fast,) = await directory.send(APP, "xiaomi", to_mi)
            assert mi.standin.count(SEND_PATH) == 3  # failed fast: no request
            assert fast.sent is False and fast.retry_after is not None
            assert 25 < fast.retry_after <= 30
            (other,) = await directory.send(APP, "oppo", to_oppo)
            assert other.code == 2  # another vendor of the same app is unaffected
            del mi.standin.answers[mi.token]  # the vendor recovers
            stepping_clock.jump(30)
            (back,) = await directory.send(APP, "xiaomi", to_mi)
        assert back.code == 2 and guarded.breaker.state is BreakerState.CLOSED
        assert directory.statistics.results[("xiaomi", 99999999)] == 4
        assert directory.statistics.results[("xiaomi", 2)] == 1


async def test_concurrency_bound_holds_on_the_wire(wall: ManualClock, ca: trustme.CA) -> None:
    settings = GuardSettings(max_concurrent=3, retry=RetryPolicy(max_attempts=1))
    async with vendor_env("xiaomi", wall, ca) as env:
        env.standin.hold = trio.Event()
        async with ChannelDirectory(wall, env.options, settings) as directory:
            await directory.configure(APP, env.credentials)
            guarded = directory.guarded(APP, "xiaomi")
            assert guarded is not None
            deliveries = [VendorDelivery(env.message(), f"regid-{n}") for n in range(20)]
            results = []

            async def sender() -> None:
                results.extend(await directory.send(APP, "xiaomi", deliveries))

            with trio.fail_after(30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    while env.standin.in_flight < 3:
                        await trio.sleep(0.01)
                    await trio.sleep(0.1)  # room for a fourth request, were the bound broken
                    assert env.standin.in_flight == 3
                    env.standin.hold.set()
        assert env.standin.max_in_flight == 3
        assert [r.code for r in results] == [2] * 20

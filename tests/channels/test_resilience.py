"""Retry, circuit breaker and concurrency bound, on Trio's clock (MockClock with
autojump: backoffs and open periods pass without real waiting)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gateway.channels import (
    BreakerState,
    Bulkhead,
    ChannelDirectory,
    CircuitBreaker,
    GuardSettings,
    RetryPolicy,
    SendResult,
    VendorDelivery,
    parse_credentials,
)
from gateway.clock import ManualClock

from .envs import message
from .scripted import ScriptedChannel, busy, dead, ok, opener_for

CREDENTIALS = parse_credentials("xiaomi", {"app_secret": "s", "package_name": "com.example"})
NO_JITTER = RetryPolicy(jitter=lambda: 1.0)


@pytest.fixture
def autojump() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


def delivery(n: int = 0) -> VendorDelivery:
    return VendorDelivery(message(ManualClock(0), message_id=f"m{n}"), f"token-{n}")


async def send(
    channel: ScriptedChannel, settings: GuardSettings, count: int = 1, app: str = "a"
) -> list[SendResult]:
    async with ChannelDirectory(ManualClock(0), settings=settings, opener=opener_for(channel)) as d:
        await d.configure(app, CREDENTIALS)
        return await d.send(app, "xiaomi", [delivery(n) for n in range(count)])


def test_retry_policy_backoff_and_retry_after() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30, jitter=lambda: 1.0)
    assert [policy.delay(n, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, None]
    assert policy.delay(1, 12.0) == 12.0  # the vendor's Retry-After wins when longer
    assert policy.delay(1, 31.0) is None  # too long to wait here: the caller reschedules
    assert RetryPolicy(jitter=lambda: 0.0).delay(1, None) == 0.25  # jitter halves at most


async def test_transient_answers_are_retried_after_retry_after(
    autojump: trio.testing.MockClock,
) -> None:
    channel = ScriptedChannel(lambda n: busy(retry_after=5.0) if n < 3 else ok(n))
    start = trio.current_time()
    (result,) = await send(channel, GuardSettings(retry=NO_JITTER))
    assert result.code == 2
    assert [round(t - start, 3) for t in channel.calls] == [0, 5, 10]


async def test_permanent_answers_are_not_retried(autojump: trio.testing.MockClock) -> None:
    channel = ScriptedChannel(lambda n: dead())
    (result,) = await send(channel, GuardSettings(retry=NO_JITTER))
    assert (result.code, result.dead_token, len(channel.calls)) == (20301, True, 1)


async def test_a_long_retry_after_goes_back_to_the_caller(
    autojump: trio.testing.MockClock,
) -> None:
    channel = ScriptedChannel(lambda n: busy(retry_after=600.0))
    start = trio.current_time()
    (result,) = await send(channel, GuardSettings(retry=NO_JITTER))
    assert (result.transient, result.retry_after, len(channel.calls)) == (True, 600.0, 1)
    assert trio.current_time() == start


async def test_attempts_are_bounded(autojump: trio.testing.MockClock) -> None:
    channel = ScriptedChannel(lambda n: busy())
    (result,) = await send(channel, GuardSettings(retry=RetryPolicy(max_attempts=3)))
    assert (result.code, result.transient, len(channel.calls)) == (10027, True, 3)


async def test_breaker_opens_fails_fast_then_probes_and_closes(
    autojump: trio.testing.MockClock,
) -> None:
    outage = True
    channel = ScriptedChannel(lambda n: busy() if outage else ok(n))
    settings = GuardSettings(
        failure_threshold=3, open_seconds=10, retry=RetryPolicy(max_attempts=1)
    )
    async with ChannelDirectory(ManualClock(0), settings=settings, opener=opener_for(channel)) as d:
        await d.configure("a", CREDENTIALS)
        guarded = d.guarded("a", "xiaomi")
        assert guarded is not None
        for _ in range(3):
            await d.send("a", "xiaomi", [delivery()])
        assert guarded.breaker.state is BreakerState.OPEN
        start = trio.current_time()
        (fast,) = await d.send("a", "xiaomi", [delivery()])
        assert trio.current_time() == start and len(channel.calls) == 3  # not even tried
        assert (fast.transient, fast.sent, fast.retry_after) == (True, False, 10.0)
        assert "circuit open" in fast.raw
        await trio.sleep(10)
        (probe,) = await d.send("a", "xiaomi", [delivery()])  # the probe fails: open longer
        assert probe.code == 10027 and guarded.breaker.state is BreakerState.OPEN
        (fast,) = await d.send("a", "xiaomi", [delivery()])
        assert fast.retry_after == 20.0
        outage = False
        await trio.sleep(20)
        (probe,) = await d.send("a", "xiaomi", [delivery()])
        assert probe.code == 2 and guarded.breaker.state is BreakerState.CLOSED
        assert d.statistics.fast_failures["xiaomi"] == 2


async def test_one_probe_at_a_time_and_a_cancelled_probe_frees_the_slot(
    autojump: trio.testing.MockClock,
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=5)
    breaker.failed()
    await trio.sleep(5)
    assert breaker.admit() is None  # the probe
    assert breaker.admit() is not None  # a second caller waits for its outcome
    breaker.abandoned()
    assert breaker.admit() is None


async def test_bulkhead_bounds_concurrency_and_waiting(autojump: trio.testing.MockClock) -> None:
    channel = ScriptedChannel(lambda n: None)  # every call waits for `release`
    settings = GuardSettings(max_concurrent=3, max_waiting=2, retry=RetryPolicy(max_attempts=1))
    results: list[SendResult] = []
    async with ChannelDirectory(ManualClock(0), settings=settings, opener=opener_for(channel)) as d:
        await d.configure("a", CREDENTIALS)
        guarded = d.guarded("a", "xiaomi")
        assert guarded is not None

        async def sender(n: int) -> None:  # eight callers at once, one delivery each
            results.extend(await d.send("a", "xiaomi", [delivery(n)]))

        async with trio.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(sender, n)
            await trio.testing.wait_all_tasks_blocked()
            assert (channel.in_flight, guarded.bulkhead.waiting) == (3, 2)
            channel.release.set()
    assert channel.max_in_flight == 3
    assert sum(r.code == 2 for r in results) == 5
    refused = [r for r in results if r.code != 2]
    assert len(refused) == 3 and all(r.transient and not r.sent for r in refused)


async def test_one_large_call_queues_in_order_within_the_bound(
    autojump: trio.testing.MockClock,
) -> None:
    channel = ScriptedChannel(lambda n: None)
    settings = GuardSettings(max_concurrent=3, max_waiting=0)
    async with ChannelDirectory(ManualClock(0), settings=settings, opener=opener_for(channel)) as d:
        await d.configure("a", CREDENTIALS)
        async with trio.open_nursery() as nursery:
            results: list[SendResult] = []

            async def sender() -> None:
                results.extend(await d.send("a", "xiaomi", [delivery(n) for n in range(50)]))

            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            assert channel.in_flight == 3
            channel.release.set()
    assert channel.max_in_flight == 3 and len(channel.calls) == 50
    assert [r.code for r in results] == [2] * 50  # none refused: the call waited its turn


async def test_reconfiguring_lets_calls_under_way_finish(autojump: trio.testing.MockClock) -> None:
    old, new = ScriptedChannel(lambda n: None), ScriptedChannel(ok)
    opened = iter([old, new])
    results: list[SendResult] = []
    async with ChannelDirectory(ManualClock(0), opener=lambda *args: next(opened)) as d:
        await d.configure("a", CREDENTIALS)
        async with trio.open_nursery() as nursery:

            async def sender() -> None:
                results.extend(await d.send("a", "xiaomi", [delivery()]))

            nursery.start_soon(sender)
            await trio.testing.wait_all_tasks_blocked()
            await d.configure("a", CREDENTIALS)  # new credentials while a call is under way
            assert not old.closed
            (fresh,) = await d.send("a", "xiaomi", [delivery()])
            assert fresh.code == 2 and len(new.calls) == 1
            old.release.set()
    assert [r.code for r in results] == [2] and old.closed


async def test_a_hung_vendor_times_out_and_slows_no_other(
    autojump: trio.testing.MockClock,
) -> None:
    hung = ScriptedChannel(lambda n: None)
    healthy = ScriptedChannel(ok)
    opened = iter([hung, healthy])
    settings = GuardSettings(call_timeout=30, retry=RetryPolicy(max_attempts=1))
    finished: dict[str, float] = {}
    async with ChannelDirectory(
        ManualClock(0), settings=settings, opener=lambda *args: next(opened)
    ) as d:
        await d.configure("slow-app", CREDENTIALS)
        await d.configure("fast-app", CREDENTIALS)
        start = trio.current_time()

        async def one(app: str) -> None:
            (result,) = await d.send(app, "xiaomi", [delivery()])
            finished[app] = trio.current_time() - start
            finished[f"{app}-code"] = result.code

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "slow-app")
            nursery.start_soon(one, "fast-app")
    assert finished["fast-app"] == 0 and finished["fast-app-code"] == 2
    assert finished["slow-app"] == 30 and finished["slow-app-code"] == 99999999


async def test_bulkhead_alone() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_waiting=0)
    assert await bulkhead.acquire()
    assert not await bulkhead.acquire()  # nobody may wait
    assert bulkhead.refused == 1
    bulkhead.release()
    assert bulkhead.in_flight == 0


async def test_closing_the_directory_closes_channels(autojump: trio.testing.MockClock) -> None:
    channel = ScriptedChannel(ok)
    await send(channel, GuardSettings())
    assert channel.closed


async def test_an_open_circuit_is_not_waited_out(autojump: trio.testing.MockClock) -> None:
    channel = ScriptedChannel(lambda n: busy())
    settings = GuardSettings(failure_threshold=1, open_seconds=5, retry=NO_JITTER)
    async with ChannelDirectory(ManualClock(0), settings=settings, opener=opener_for(channel)) as d:
        await d.configure("a", CREDENTIALS)
        start = trio.current_time()
        (result,) = await d.send("a", "xiaomi", [delivery()])
    # One call failed and opened the circuit: the retry found it open and gave up at once.
    assert len(channel.calls) == 1 and trio.current_time() - start == 0.5
    assert (result.sent, result.retry_after) == (False, 4.5) and "circuit open" in result.raw

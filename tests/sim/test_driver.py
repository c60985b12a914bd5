"""The HTTP push driver against a real gateway: every push type, rates, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from itertools import pairwise

import httpx
import pytest
import trio
from trio.testing import MockClock

from client_sim.behaviours import Steady
from client_sim.driver import PushDriver, PushJob
from client_sim.fleet import DevicePlan
from client_sim.oracle import Oracle
from client_sim.received import wall_ms
from tests.harness import SAFETY_NET, RunningGateway

from .conftest import make_fleet, open_driver


def fleet_plans(n: int, *, platform: str = "android") -> list[DevicePlan]:
    return [DevicePlan(device_id=f"d{i}", behaviour=Steady(), platform=platform) for i in range(n)]


async def test_simple_pushes_at_a_rate(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, fleet_plans(5), oracle)
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 5, 5)
            start = trio.current_time()
            await driver.run((PushJob.device(f"d{i % 5}") for i in range(20)), rate=40)
            took = trio.current_time() - start
            await fleet.wait_until(lambda: oracle.outstanding == 0, 5)
            await fleet.close()
    assert took >= 19 / 40 - 0.02
    assert driver.stats.requests == driver.stats.messages == 20
    assert driver.stats.statuses == {0: 20}
    assert len(driver.stats.api_latencies) == 20
    assert oracle.verdict(end_ms=wall_ms()).ok


async def test_run_stops_after_its_duration(live: RunningGateway):
    """Against a real gateway, on a machine of any speed: the run ends, and never sends
    more than its rate allows (a slow machine only sends fewer)."""
    oracle = Oracle()
    with trio.fail_after(SAFETY_NET):
        async with open_driver(live, oracle) as driver:
            endless = (PushJob.device("nobody") for _ in iter(int, 1))
            start = trio.current_time()
            await driver.run(endless, rate=50, duration=0.5)
            took = trio.current_time() - start
    assert took >= 0.5
    assert 1 <= driver.stats.messages <= 25  # 50/s x 0.5 s
    assert driver.stats.requests == driver.stats.messages
    assert oracle.verdict(end_ms=wall_ms()).messages == driver.stats.messages


# --- the schedule, in virtual time (trio's MockClock): exact on any machine ------------


class FakeApi:
    """An HTTP API answering every push after `latency` seconds of Trio time,
    recording when each request arrived (the driver under test is real)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.arrivals: list[float] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(trio.current_time())
        await trio.sleep(self.latency)
        n = len(self.arrivals)
        return httpx.Response(200, json={"message_id": f"m{n}", "msg_key": f"k{n}", "status": 0})

    @asynccontextmanager
    async def driver(self, clients: int = 32) -> AsyncIterator[PushDriver]:
        transport = httpx.MockTransport(self.handle)
        async with AsyncExitStack() as stack:
            pool = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url="http://gateway.test", transport=transport)
                )
                for _ in range(clients)
            ]
            yield PushDriver(pool)


def endless_jobs() -> Iterator[PushJob]:
    return (PushJob.device("d") for _ in iter(int, 1))


async def test_the_rate_is_kept_and_the_duration_ends_the_run(autojump_clock: MockClock):
    api = FakeApi()
    start = trio.current_time()
    async with api.driver() as driver:
        await driver.run(endless_jobs(), rate=50, duration=0.5)
    assert [round(t - start, 6) for t in api.arrivals] == [i / 50 for i in range(25)]
    assert driver.stats.messages == 25


async def test_a_slow_gateway_slips_the_schedule_without_bursts(autojump_clock: MockClock):
    """Answers take 0.1 s and 2 requests may be in flight: 20/s at most, below the 50/s
    asked. Nothing is sent to catch up, and the duration still ends the run."""
    api = FakeApi(latency=0.1)
    start = trio.current_time()
    async with api.driver() as driver:
        await driver.run(endless_jobs(), rate=50, duration=0.95, concurrency=2)
    arrivals = [t - start for t in api.arrivals]
    assert arrivals[-1] < 0.95
    assert trio.current_time() - start < 0.95 + 0.1  # the last answer, then done
    # Never more than the rate allows in any window from the start.
    assert all(n + 1 <= 50 * t + 1 for n, t in enumerate(arrivals))
    # Never faster than the rate between any two requests: no burst after a slip.
    assert all(b - a >= 1 / 50 - 1e-9 for a, b in pairwise(arrivals))
    assert len(arrivals) == 20, arrivals  # two every 0.1 s


async def test_multiple_pushes_in_batches(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, fleet_plans(10), oracle)
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 10, 5)
            ids = [f"d{i}" for i in range(10)]
            accepted = await driver.send(PushJob.multiple(ids))
            await driver.run([PushJob.multiple(ids[:4]), PushJob.multiple(ids[4:])])
            await fleet.wait_until(lambda: oracle.outstanding == 0, 5)
            await fleet.close()
    assert [a.target for a in accepted] == ids
    assert all(a.expected == {a.target} and a.push_type == "multiple" for a in accepted)
    assert len({a.message_id for a in accepted}) == 10
    assert driver.stats.requests == 3 and driver.stats.messages == 20
    verdict = oracle.verdict(end_ms=wall_ms())
    assert verdict.ok and verdict.delivered == 20


def test_multiple_jobs_are_bounded():
    with pytest.raises(ValueError, match="1 to 1000"):
        PushJob.multiple([f"d{i}" for i in range(1001)])
    with pytest.raises(ValueError, match="distinct"):
        PushJob.multiple(["d1", "d1"])
    assert PushJob.multiple(["a", "b"]).messages == 2
    assert PushJob.broadcast(["a", "b"]).messages == 1


async def test_broadcasts_reach_every_device_once(live: RunningGateway):
    oracle = Oracle()
    plans = fleet_plans(3) + [
        DevicePlan(device_id=f"i{i}", behaviour=Steady(), platform="ios") for i in range(2)
    ]
    fleet = make_fleet(live, plans, oracle)
    everyone = [p.device_id for p in plans]
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 5, 5)
            await driver.send(PushJob.broadcast(everyone))
            await driver.send(PushJob.broadcast(["i0", "i1"], platform="ios"))
            await fleet.wait_until(lambda: oracle.outstanding == 0, 5)
            await fleet.close()
    verdict = oracle.verdict(end_ms=wall_ms())
    assert verdict.ok, verdict.failures
    assert verdict.messages == 2 and verdict.delivered == 7
    assert fleet.counts.received == 7 and verdict.misdelivered == 0


async def test_user_pushes_after_binding_through_the_api(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, fleet_plans(3), oracle)
    with trio.fail_after(15):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 3, 5)
            await driver.bind("alice", "d0")
            await driver.bind("alice", "d1")
            await driver.send(PushJob.user("alice", ["d0", "d1"]))
            # Nobody is bound to bob: status 1, nothing expected.
            await driver.send(PushJob.user("bob", []))
            await fleet.wait_until(lambda: oracle.outstanding == 0, 5)
            await fleet.close()
    assert driver.stats.bindings == 2
    assert driver.stats.statuses == {0: 1, 1: 1}
    verdict = oracle.verdict(end_ms=wall_ms())
    assert verdict.ok and verdict.delivered == 2
    assert "d2" not in {d for _, d in verdict.examples.get("misdelivered", [])}


async def test_refused_requests_are_counted_not_accepted(live: RunningGateway):
    oracle = Oracle()
    with trio.fail_after(10):
        async with open_driver(live, oracle) as driver:
            bad = PushJob(
                kind="device", targets=("d0",), expected=(frozenset({"d0"}),), delivery_type="pc"
            )
            assert await driver.send(bad) == []
    # Counted by status and error code (the code's name is the gateway's choice).
    ((refusal, count),) = driver.stats.rejected.items()
    assert refusal.startswith("400 ") and count == 1
    assert driver.stats.messages == 0
    assert oracle.verdict(end_ms=wall_ms()).messages == 0


async def test_a_gateway_that_is_not_there_fails_after_retries():
    oracle = Oracle()
    with trio.fail_after(10):
        async with open_driver_at("http://127.0.0.1:9", oracle) as driver:
            assert await driver.send(PushJob.device("d0")) == []
    assert driver.stats.retries == 2
    assert sum(driver.stats.failed.values()) == 1


def open_driver_at(api: str, oracle: Oracle):
    from client_sim.driver import PushDriver

    return PushDriver.open(api, "key", on_accepted=oracle.accept, max_retries=2)

"""Each fleet behaviour against a real gateway (in-process, wall clock)."""

from __future__ import annotations

import trio

from client_sim.behaviours import (
    BehaviourParams,
    Binder,
    Flaky,
    LateJoiner,
    NeverAck,
    SlowReader,
    Steady,
    make_behaviour,
)
from client_sim.driver import PushJob
from client_sim.fleet import DevicePlan, FleetLog
from client_sim.oracle import Oracle
from tests.harness import SAFETY_NET, RunningGateway, message_details, wait_until

from .conftest import make_fleet, open_driver

FAST_BACKOFF = {"backoff_base": 0.05, "backoff_cap": 0.2}
RUN = 6 * SAFETY_NET  # a whole test's safety net: a busy machine only makes it slower


def plans(n: int, behaviour_name: str, params: BehaviourParams | None = None, **kw):
    behaviour = make_behaviour(behaviour_name, params)
    return [DevicePlan(device_id=f"d{i}", behaviour=behaviour, **kw) for i in range(n)]


async def test_steady_devices_get_and_ack_everything(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, plans(20, "steady"), oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 20, SAFETY_NET)
            await driver.run(PushJob.device(f"d{i % 20}") for i in range(60))
            await fleet.wait_until(
                lambda: oracle.outstanding == 0 and oracle.acked == 60, SAFETY_NET
            )
            some = next(iter(fleet.devices["d3"].received))
            async with live.http() as http:
                assert (await message_details(http, some))["status"] == 2
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok, verdict.failures
    assert verdict.delivered == verdict.acked == 60
    assert verdict.duplicates == verdict.redeliveries == 0
    assert fleet.counts.received == 60 and fleet.counts.connected == 0
    assert fleet.counts.connects == 20


async def test_flaky_devices_lose_connections_but_no_message(live: RunningGateway):
    oracle = Oracle()
    params = BehaviourParams(flaky_uptime=0.2)
    fleet = make_fleet(live, plans(10, "flaky", params), oracle, device_options=FAST_BACKOFF)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.ever_connected == 10, SAFETY_NET)
            await driver.run((PushJob.device(f"d{i % 10}") for i in range(150)), rate=100)
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok, verdict.failures
    assert verdict.delivered == 150
    assert fleet.counts.disconnects >= 10  # ~7 drops per device in 1.5 s
    assert all(d.byes == [] or "replaced" not in d.byes for d in fleet.devices.values())


async def test_a_slow_reader_reads_one_push_per_ack_delay(live: RunningGateway):
    oracle = Oracle()
    params = BehaviourParams(slow_ack_delay=0.2, stall_for=0)
    fleet = make_fleet(live, plans(1, "slow", params), oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 1, SAFETY_NET)
            await driver.run(PushJob.device("d0") for _ in range(8))
            await fleet.wait_until(
                lambda: oracle.outstanding == 0 and oracle.acked == 8, SAFETY_NET
            )
            await fleet.close()
    times = sorted(r.received_at for r in fleet.devices["d0"].received.values())
    # The gateway had all 8 in its socket at once; the device took them a few
    # per ack delay (a fast reader takes a few milliseconds).
    assert times[-1] - times[0] >= 0.35
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok and verdict.ack_latency.p50 is not None
    assert verdict.ack_latency.p50 >= 200


async def test_a_stalled_reader_leaves_pushes_in_the_socket(live: RunningGateway):
    oracle = Oracle()
    # Stalls of 0.6 s, one right after the other: stalled nearly all the time.
    params = BehaviourParams(stall_every=0.01, stall_for=0.6, slow_ack_delay=0)
    fleet = make_fleet(live, plans(2, "slow", params), oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 2, SAFETY_NET)
            devices = fleet.devices.values()
            await wait_until(lambda: all(d.stalled for d in devices), "both devices stalled")
            await driver.run(PushJob.device(f"d{i % 2}") for i in range(20))
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok, verdict.failures
    assert verdict.receive_latency.max is not None and verdict.receive_latency.max >= 150


async def test_device_stall_pauses_reading(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, plans(1, "steady"), oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 1, SAFETY_NET)
            device = fleet.devices["d0"]
            await driver.send(PushJob.device("d0"))
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            device.stall(0.8)
            stalled_at = trio.current_time()
            await driver.send(PushJob.device("d0"))
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            await fleet.close()
    second = max(r.received_at for r in device.received.values())
    assert second - stalled_at >= 0.7


async def test_never_ack_devices_get_everything_again_after_reconnecting(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, plans(3, "never-ack"), oracle, device_options=FAST_BACKOFF)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 3, SAFETY_NET)
            accepted = []
            for i in range(9):
                accepted += await driver.send(PushJob.device(f"d{i % 3}"))
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            assert fleet.counts.acked == 0
            async with live.http() as http:
                assert (await message_details(http, accepted[0].message_id))["status"] == 0
            # Everyone reconnects: the unacked messages come again, on new sessions.
            assert await fleet.storm() == 3
            await fleet.wait_until(lambda: fleet.counts.repeats == 9, SAFETY_NET)
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok
    assert verdict.acked == 0
    assert verdict.redeliveries == 9 and verdict.duplicates == 0


async def test_a_reconnect_storm_drops_everyone_and_loses_nothing(live: RunningGateway):
    oracle = Oracle()
    fleet = make_fleet(live, plans(30, "steady"), oracle, device_options=FAST_BACKOFF)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 30, SAFETY_NET)

            stormed = trio.Event()

            async def storm_midway() -> None:
                await wait_until(lambda: driver.stats.messages >= 40, "40 pushes accepted")
                assert await fleet.storm() == 30
                stormed.set()

            nursery.start_soon(storm_midway)
            await driver.run((PushJob.device(f"d{i % 30}") for i in range(120)), rate=200)
            await stormed.wait()
            await fleet.wait_until(
                lambda: oracle.outstanding == 0 and fleet.counts.connected == 30, SAFETY_NET
            )
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok, verdict.failures
    assert fleet.counts.storms == 1
    assert fleet.counts.connects == 60 and fleet.counts.disconnects == 60


async def test_late_joiners_find_their_backlog(live: RunningGateway):
    oracle = Oracle()
    params = BehaviourParams(late_window=1.0)
    fleet = make_fleet(live, plans(10, "late", params), oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            for i in range(10):
                await driver.send(PushJob.device(f"d{i}"))
            joined_when_pushed = fleet.counts.started  # none: each finds a backlog
            await nursery.start(fleet.run)  # they join within late_window, at random
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            await fleet.close()
    assert joined_when_pushed == 0
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok and verdict.delivered == 10


async def test_binders_bind_themselves_and_get_their_users_pushes(live: RunningGateway):
    oracle = Oracle()
    fleet_plans = [
        DevicePlan(device_id=f"d{i}", behaviour=Binder(), user=f"u{i // 2}") for i in range(4)
    ]
    fleet = make_fleet(live, fleet_plans, oracle)
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.bound == 4, SAFETY_NET)
            assert fleet.devices["d3"].bound_user == "u1"
            async with live.http() as http:
                listed = (await http.get("/v1/users/u0/devices")).json()["items"]
            assert sorted(d["device_id"] for d in listed) == ["d0", "d1"]
            for _ in range(3):
                await driver.send(PushJob.user("u0", ["d0", "d1"]))
                await driver.send(PushJob.user("u1", ["d2", "d3"]))
            await fleet.wait_until(lambda: oracle.outstanding == 0, SAFETY_NET)
            await fleet.close()
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok, verdict.failures
    assert verdict.messages == 6 and verdict.delivered == 12 and verdict.misdelivered == 0


async def test_without_an_observer_the_fleet_keeps_a_log(live: RunningGateway):
    fleet = make_fleet(live, [DevicePlan(device_id="d0", behaviour=Steady())])
    oracle = Oracle()
    with trio.fail_after(RUN):
        async with trio.open_nursery() as nursery, open_driver(live, oracle) as driver:
            await nursery.start(fleet.run)
            await fleet.wait_until(lambda: fleet.counts.connected == 1, SAFETY_NET)
            await driver.send(PushJob.device("d0"))
            await fleet.wait_until(lambda: fleet.counts.acked == 1, SAFETY_NET)
            await fleet.close()
    log = fleet.log
    assert isinstance(log, FleetLog)
    assert [a.device for a in log.arrivals] == ["d0"]
    assert [(d, online) for d, online, _ in log.presences] == [("d0", True), ("d0", False)]
    log.replay(oracle)
    verdict = oracle.verdict(end_ms=fleet_end())
    assert verdict.ok and verdict.delivered == verdict.acked == 1


def test_behaviours_shape_the_device_config():
    from client_sim import DeviceConfig

    base = DeviceConfig(url="ws://x:1/", app="a", device_id="d", secret="s")
    params = BehaviourParams(slow_ack_delay=0.3)
    slow = SlowReader(params).configure(base)
    assert (slow.ack_mode, slow.ack_delay, slow.ack_queue_size) == ("delayed", 0.3, 1)
    assert NeverAck().configure(base).ack_mode == "never"
    assert Flaky().configure(base) == base
    import random

    delay = LateJoiner(BehaviourParams(late_window=2.0)).join_delay(random.Random(1))
    assert 0 <= delay <= 2.0


def fleet_end() -> int:
    from client_sim.received import wall_ms

    return wall_ms()

"""Session and hub over in-memory streams: timeouts, closes and flow control in virtual time."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
import trio
import trio.testing

from gateway.ids import new_id
from gateway.outbox import Writing
from gateway.store import App, NewMessage
from protocol import (
    Ack,
    Bind,
    Bound,
    Bye,
    Error,
    Ping,
    Pong,
    Push,
    State,
    Unbind,
    Unbound,
    Welcome,
    bind_signature,
)
from protocol.framing import prefix
from tests.harness import APP, START_MS, hello_for

from .rig import Rig, StoreClock, rig


@pytest.fixture
def pacing() -> StoreClock:
    return StoreClock()


@pytest.fixture
def store_clock(pacing: StoreClock) -> trio.testing.MockClock:
    """The test's clock (pytest-trio runs the test on the Clock fixture it is given)."""
    return pacing.clock


def message(target: str, title: str = "t", *, user: bool = False, **extra: object) -> NewMessage:
    kind = "user" if user else "android"
    return NewMessage("simple", kind, target, title, "c", **extra)  # type: ignore[arg-type]


async def app_of(r: Rig) -> App:
    app = await r.hub.app(APP.app_id)
    assert app is not None
    return app


async def test_no_hello_within_the_timeout(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.open()
        started = trio.current_time()
        with trio.fail_after(60):
            error = await device.receive()
        assert isinstance(error, Error) and error.code == "hello_timeout"
        assert trio.current_time() - started == pytest.approx(10.0)
        await device.closed()


async def test_a_silent_device_gets_bye_idle_timeout_within_an_eighth(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("quiet")
        heard = trio.current_time()
        with trio.fail_after(600):
            bye = await device.receive()
        assert isinstance(bye, Bye) and bye.reason == "idle_timeout"
        # 2 x heartbeat, checked every eighth of it.
        assert 60.0 <= trio.current_time() - heard <= 60.0 * 1.125 + 0.01
        await device.closed()
        await r.settle()
        assert not r.hub.is_online(APP.app_id, "quiet")


async def test_pings_keep_a_connection_open_for_hours(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("pinger")
        with trio.fail_after(4 * 3600):
            for _ in range(200):  # 200 x 50 s: close to three hours
                await trio.sleep(50)
                await device.send(Ping())
                assert isinstance(await device.receive(), Pong)
        assert device.session.statistics().state is State.OPEN


async def test_frames_before_hello_and_a_second_hello(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        early = await r.open()
        await early.send(Ping())
        with trio.fail_after(5):
            error = await early.receive()
            assert isinstance(error, Error) and error.code == "hello_required"
            await early.closed()
        device = await r.connect("twice")
        await device.send(hello_for("twice"), Ping())
        with trio.fail_after(5):
            error = await device.receive()
            assert isinstance(error, Error) and error.code == "bad_hello"
            assert isinstance(await device.receive(), Pong)  # a reply: the connection lives


async def test_a_hello_without_a_token_is_auth_failed(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.open()
        payload = msgpack.packb(
            {"t": "hello", "v": 1, "app": APP.app_id, "device": "d", "platform": "ios"}
        )
        await device.stream.send_all(prefix(payload) + payload)
        with trio.fail_after(5):
            error = await device.receive()
            assert isinstance(error, Error) and error.code == "auth_failed"
            await device.closed()


async def test_a_newer_connection_replaces_the_older(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        first = await r.connect("twin")
        second = await r.connect("twin")
        with trio.fail_after(5):
            bye = await first.receive()
            assert isinstance(bye, Bye) and bye.reason == "replaced"
            await first.closed()
        (outcome,) = await r.hub.push(await app_of(r), [message("twin")])
        with trio.fail_after(5):
            push = await second.receive()
        assert isinstance(push, Push) and push.id == outcome.message.message_id


async def test_a_device_that_stops_reading_is_cut_at_the_send_timeout(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        sloth = await r.connect("sloth", lockstep=True)
        other = await r.connect("other")
        app = await app_of(r)
        await r.hub.push(app, [message("sloth", "x" * 2000)])  # its write blocks: nobody reads
        await r.settle()
        assert sloth.session.statistics().outbox.state is Writing.DRAINING
        stalled = trio.current_time()
        (outcome,) = await r.hub.push(app, [message("other")])
        with trio.fail_after(5):
            push = await other.receive()  # the others are not held up
        assert isinstance(push, Push) and push.id == outcome.message.message_id
        with trio.fail_after(60):
            while r.hub.is_online(APP.app_id, "sloth"):
                await trio.sleep(0.5)
        assert trio.current_time() - stalled == pytest.approx(10.0, abs=0.6)  # send_timeout


async def test_an_outbox_overflow_says_bye_slow_consumer(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, outbox_limit=5) as r:
        device = await r.connect("burst")
        await r.settle()  # no write in progress: the socket takes what it is given
        # Ten messages routed in one step, before the flusher's turn: over the limit.
        await r.hub.push(await app_of(r), [message("burst", f"m{i}") for i in range(10)])
        with trio.fail_after(5):
            bye = await device.receive()
            assert isinstance(bye, Bye) and bye.reason == "slow_consumer"
            await device.closed()
        # Nothing was lost: the messages wait in the store for the next connection.
        again = await r.connect("burst")
        with trio.fail_after(5):
            titles = [(await again.receive()) for _ in range(10)]
        assert [p.title for p in titles if isinstance(p, Push)] == [f"m{i}" for i in range(10)]


async def test_a_backlog_is_read_one_page_at_a_time_as_the_device_reads(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, backlog_page=10) as r:
        app = await app_of(r)
        stored = [
            o.message.message_id
            for o in await r.hub.push(app, [message("away", f"m{i}") for i in range(35)])
        ]
        device = await r.connect("away", lockstep=True)
        got: list[str] = []
        with trio.fail_after(30):
            while len(got) < len(stored):
                await r.settle()
                # Never more than one page (and the frame being written) held.
                assert device.session.statistics().outbox.queued <= 10
                push = await device.receive()
                assert isinstance(push, Push)
                got.append(push.id)
        assert got == stored


async def test_messages_routed_while_a_backlog_is_paged_come_after_it_once(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, backlog_page=4) as r:
        app = await app_of(r)
        before = [o.message.message_id for o in await r.hub.push(app, [message("p")] * 9)]
        device = await r.connect("p", lockstep=True)
        during: list[str] = []
        got: list[str] = []
        with trio.fail_after(30):
            for i in range(9):
                (outcome,) = await r.hub.push(app, [message("p", f"live{i}")])
                during.append(outcome.message.message_id)
                push = await device.receive()
                assert isinstance(push, Push)
                got.append(push.id)
            while len(got) < 18:
                push = await device.receive()
                assert isinstance(push, Push)
                got.append(push.id)
        assert got == before + during


async def test_acks_past_the_rate_stop_reading_the_connection(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, ack_rate=1000.0) as r:
        device = await r.connect("flood")
        # A frame holds at most ~2,400 message ids (65,536 bytes).
        unknown = [tuple(new_id(START_MS) for _ in range(2_000)) for _ in range(15)]
        started = trio.current_time()
        await device.send(*(Ack(ids=ids) for ids in unknown), Ping())
        with trio.fail_after(120):
            assert isinstance(await device.receive(), Pong)
        # 30,000 ids at 1,000/s after a burst of 10,000: the ping waited 20 s unread.
        assert trio.current_time() - started >= 20.0
        bystander = await r.connect("bystander")
        await bystander.send(Ping())
        with trio.fail_after(1):
            assert isinstance(await bystander.receive(), Pong)


async def test_acks_reach_the_store_and_junk_ids_are_dropped(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("acker")
        await r.hub.push(await app_of(r), [message("acker")])
        with trio.fail_after(5):
            push = await device.receive()
        assert isinstance(push, Push)
        await device.send(Ack(ids=(push.id, push.id, "not-an-id", "x" * 26)))
        await r.settle()
        found = await r.store.get_message(APP.app_id, push.id)
        assert found is not None and found[0].status == 2
        assert device.session.statistics().acks_in_flight == 0


async def test_unbind_drops_the_old_users_queued_messages(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("shared", lockstep=True)
        sig = bind_signature(APP.secret, APP.app_id, "shared", "alice")
        await device.send(Bind(user="alice", sig=sig))
        with trio.fail_after(5):
            assert isinstance(await device.receive(), Bound)
        app = await app_of(r)
        await r.hub.push(app, [message("alice", "x" * 3000, user=True) for _ in range(40)])
        await r.settle()
        assert device.session.statistics().outbox.queued > 0  # queued, the device not reading
        await r.hub.unbind(APP.app_id, "shared")
        assert device.session.statistics().outbox.queued == 0
        await device.send(Ping())
        got: list[object] = []
        with trio.fail_after(5):
            while not isinstance(frame := await device.receive(), Pong):
                got.append(frame)
        # What was already handed to the socket (one write, at most 64 KiB) still goes.
        assert len(got) <= 22, len(got)
        await device.send(Unbind())
        with trio.fail_after(5):
            assert isinstance(await device.receive(), Unbound)


async def test_shutdown_says_bye_to_every_device_and_drains(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        devices = [await r.connect(f"d{i}") for i in range(3)]
        r.hub.shutdown()
        with trio.fail_after(5):
            for device in devices:
                bye = await device.receive()
                assert isinstance(bye, Bye) and bye.reason == "shutdown"
                await device.closed()
            await r.hub.drained.wait()


async def test_welcome_carries_the_heartbeat_and_the_store_clock(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, heartbeat=7) as r:
        device = await r.open()
        await device.send(hello_for("w"))
        with trio.fail_after(5):
            welcome = await device.receive()
        assert isinstance(welcome, Welcome)
        assert (welcome.heartbeat, welcome.server_time) == (7, START_MS)


async def test_a_bind_landing_during_hello_catches_up_once(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing, backlog_page=4) as r:
        app = await app_of(r)
        waiting = [
            o.message.message_id
            for o in await r.hub.push(
                app, [message("carol", f"c{i}", user=True) for i in range(10)]
            )
        ]
        for attempt in range(6):
            device = await r.open()
            await device.send(hello_for(f"new-{attempt}"))
            if attempt % 2:
                await trio.testing.wait_all_tasks_blocked()  # the hello's page is being read
            await r.hub.bind(APP.app_id, f"new-{attempt}", "carol")
            got: list[str] = []
            with trio.fail_after(10):
                assert isinstance(await device.receive(), Welcome)
                while len(got) < len(waiting):
                    push = await device.receive()
                    assert isinstance(push, Push)
                    got.append(push.id)
            assert got == waiting, (attempt, [waiting.index(g) for g in got])  # once each, in order
            await r.settle()
            assert device.session.statistics().outbox.queued == 0


async def test_frames_arriving_while_the_close_is_queued_are_not_read(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("late-talker")
        await r.settle()  # its reader waits for a frame
        r.hub.shutdown()  # the bye is queued, not yet written
        await device.send(Ping(), Ack(ids=(new_id(START_MS),)))  # read while closing
        with trio.fail_after(5):
            bye = await device.receive()
            assert isinstance(bye, Bye) and bye.reason == "shutdown"
            await device.closed()
            await r.hub.drained.wait()

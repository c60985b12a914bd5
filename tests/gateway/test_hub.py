"""The hub over in-memory connections: it commits, then tells the connections online."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.store import NewMessage
from protocol import Ping, Pong, Push
from tests.harness import APP

from .rig import StoreClock, rig


@pytest.fixture
def pacing() -> StoreClock:
    return StoreClock()


@pytest.fixture
def store_clock(pacing: StoreClock) -> trio.testing.MockClock:
    return pacing.clock


async def test_a_revoked_message_queued_for_a_device_is_never_written(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        device = await r.connect("reader", lockstep=True)
        app = await r.hub.app(APP.app_id)
        assert app is not None
        big = [NewMessage("simple", "android", "reader", f"m{i}", "x" * 3000) for i in range(30)]
        outcomes = await r.hub.push(app, big)
        await r.settle()  # the first write waits for the device; the rest is queued
        revoked = outcomes[-1].message.message_id
        assert await r.hub.revoke(APP.app_id, revoked) is not None
        await device.send(Ping())
        got: list[str] = []
        with trio.fail_after(10):
            while not isinstance(frame := await device.receive(), Pong):
                assert isinstance(frame, Push)
                got.append(frame.id)
        assert revoked not in got
        assert got == [o.message.message_id for o in outcomes[:-1]]


async def test_a_broadcast_reaches_the_devices_online_of_its_platform_once(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        android = await r.connect("a-1")
        app = await r.hub.app(APP.app_id)
        assert app is not None
        broadcast = NewMessage(
            "broadcast", "android", "", "all", "c", msg_key="b1", platform="android"
        )
        (outcome,) = await r.hub.push(app, [broadcast])
        with trio.fail_after(5):
            push = await android.receive()
        assert isinstance(push, Push) and push.id == outcome.message.message_id
        (again,) = await r.hub.push(app, [broadcast])  # a repeat opens nothing new
        assert again.duplicate
        await android.send(Ping())
        with trio.fail_after(5):
            assert isinstance(await android.receive(), Pong)
        late = await r.connect("a-2")  # connects later: gets it with its backlog
        with trio.fail_after(5):
            push = await late.receive()
        assert isinstance(push, Push) and push.id == outcome.message.message_id


async def test_an_approved_message_goes_to_the_device_online_now(
    tmp_path: Path, pacing: StoreClock, store_clock: trio.testing.MockClock
) -> None:
    async with rig(tmp_path, pacing) as r:
        app = await r.store.upsert_app(
            app_id=APP.app_id, name="v", api_key=APP.api_key, secret=APP.secret, verify=True
        )
        r.hub.remember_app(app)
        device = await r.connect("checked")
        (waiting,) = await r.hub.push(app, [NewMessage("simple", "android", "checked", "t", "c")])
        assert waiting.message.status == -1 and not waiting.device_ids
        await r.settle()
        assert device.session.statistics().outbox.queued == 0  # nothing before approval
        approved = await r.hub.verify(APP.app_id, waiting.message.message_id, True)
        assert approved is not None
        with trio.fail_after(5):
            push = await device.receive()
        assert isinstance(push, Push) and push.id == waiting.message.message_id
        assert r.hub.online_in(APP.app_id) == 1 and r.hub.is_online(APP.app_id, "checked")

"""Sessions and the hub over trio.testing memory streams, on a virtual clock.

The gateway's connection layer runs for real (Session, Hub, Flusher, the
idle check, a SqliteStore on a real file); only the sockets are in-memory
stream pairs, so a test is bytes in and bytes out with no port, and its
timeouts (hello, idle, send, ack rate) pass in virtual time.

`StoreClock` is `MockClock(autojump_threshold=0)` with one difference: it
jumps only while the store's writer thread is idle. Waiting for a commit is
real work on another thread, not time passing; jumping then would fire every
timeout in the middle of a store call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import trio
import trio.lowlevel
import trio.testing

from gateway.clock import ManualClock
from gateway.context import SessionContext
from gateway.flusher import Flusher
from gateway.hub import Hub
from gateway.idle import IdleWatch
from gateway.session import Session
from gateway.settings import Settings
from gateway.store import SqliteStore
from gateway.transports import TcpTransport
from protocol import Frame, TcpDecoder, Welcome, encode_tcp
from tests.harness import APP, START_MS, hello_for


class StoreClock:
    """A `MockClock(autojump_threshold=0)` whose jumps wait while a store thread works."""

    def __init__(self) -> None:
        self.clock = trio.testing.MockClock(autojump_threshold=0)
        self.stores: list[SqliteStore] = []
        jump = self.clock._autojump

        def autojump() -> None:
            if not any(busy(store) for store in self.stores):
                jump()
            # else the run loop polls again; the thread's answer wakes a task

        # MockClock is final; its run-loop hook is replaced on this one instance.
        self.clock._autojump = autojump  # type: ignore[method-assign]


def busy(store: SqliteStore) -> bool:
    statistics = store.statistics()
    return bool(statistics.in_flight or statistics.deferred_waiting)


@dataclass
class MemoryDevice:
    """The device's end of an in-memory connection: frames in, frames out."""

    stream: trio.abc.Stream
    session: Session
    decoder: TcpDecoder = field(default_factory=TcpDecoder)

    async def send(self, *frames: Frame) -> None:
        await self.stream.send_all(b"".join(encode_tcp(f) for f in frames))

    async def receive(self) -> Frame:
        """The next frame; trio.EndOfChannel once the gateway closed."""
        while True:
            for frame in self.decoder:
                return frame
            data = await self.stream.receive_some(65_536)
            if not data:
                raise trio.EndOfChannel
            self.decoder.feed(data)

    async def closed(self) -> None:
        """Wait for the gateway's close, failing on any further frame."""
        try:
            frame = await self.receive()
        except trio.EndOfChannel:
            return
        raise AssertionError(f"expected the close, got {frame!r}")


@dataclass
class Rig:
    store: SqliteStore
    hub: Hub
    context: SessionContext
    clock: StoreClock
    nursery: trio.Nursery
    settings: Settings

    async def open(self, *, lockstep: bool = False) -> MemoryDevice:
        """A new connection, not yet past hello. `lockstep`: no socket buffer at all."""
        if lockstep:
            device_end, gateway_end = trio.testing.lockstep_stream_pair()
        else:
            device_end, gateway_end = trio.testing.memory_stream_pair()
        transport = TcpTransport(gateway_end, "memory", self.settings.max_frame_size)
        session = Session(transport, self.context)
        self.nursery.start_soon(session.run)
        return MemoryDevice(device_end, session)

    async def connect(self, device_id: str, *, lockstep: bool = False) -> MemoryDevice:
        device = await self.open(lockstep=lockstep)
        await device.send(hello_for(device_id))
        welcome = await device.receive()
        assert isinstance(welcome, Welcome), welcome
        return device

    async def settle(self) -> None:
        """Until every task waits and the store has nothing in flight."""
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if not busy(self.store):
                return
            await trio.lowlevel.checkpoint()


@asynccontextmanager
async def rig(tmp_path: Path, clock: StoreClock, **overrides: object) -> AsyncIterator[Rig]:
    settings = replace(Settings(db=str(tmp_path / "rig.db"), apps=(APP,)), **overrides)  # type: ignore[arg-type]
    store = SqliteStore(settings.db, clock=ManualClock(START_MS))
    clock.stores.append(store)
    await store.open()
    try:
        app = await store.upsert_app(
            app_id=APP.app_id, name=APP.app_id, api_key=APP.api_key, secret=APP.secret, verify=False
        )
        hub = Hub(store)
        hub.remember_app(app)
        flusher, idle = Flusher(), IdleWatch(settings.idle_timeout)
        context = SessionContext.create(hub, settings, store.clock, flusher, idle)
        async with trio.open_nursery() as nursery:
            await nursery.start(flusher.run)
            nursery.start_soon(idle.run)
            yield Rig(store, hub, context, clock, nursery, settings)
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await store.aclose()

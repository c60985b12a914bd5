"""`Fleet`: many simulated devices in one nursery, observed for the oracle.

    plans = [DevicePlan(device_id=f"d{i}", behaviour=Flaky()) for i in range(500)]
    oracle = Oracle()
    fleet = Fleet(plans, url=WS_URL, app="demo", secret=SECRET, observer=oracle)
    async with trio.open_nursery() as nursery:
        await nursery.start(fleet.run)
        await fleet.wait_until(lambda: fleet.counts.connected == 500, timeout=30)
        ...                                   # push through the HTTP API
        await fleet.close()

First connects are bounded (`connect_concurrency` at a time) so a big fleet
does not hit the gateway's accept queue all at once; reconnects are spread by
each device's jittered backoff. Every push a device receives (first time or
again), every ack it sends and every connection it gains or loses goes to the
`observer` (an `Oracle`, a worker's pipe to its parent, or by default a
`FleetLog` that keeps them in lists).
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import trio

from .behaviours import ActContext, Behaviour
from .config import DeviceConfig
from .device import Device
from .oracle import Arrival
from .received import ReceivedPush, wall_ms


class FleetObserver(Protocol):
    """Where a fleet reports what its devices saw. `Oracle` is one."""

    def arrive(self, arrival: Arrival) -> None: ...

    def ack(self, device: str, message_ids: Iterable[str], acked_ms: int) -> None: ...

    def presence(self, device: str, *, online: bool, at_ms: int) -> None: ...


@dataclass(slots=True)
class FleetLog:
    """An observer that keeps every record, to feed an oracle later (`replay`)."""

    arrivals: list[Arrival] = field(default_factory=list)
    acks: list[tuple[str, tuple[str, ...], int]] = field(default_factory=list)
    presences: list[tuple[str, bool, int]] = field(default_factory=list)

    def arrive(self, arrival: Arrival) -> None:
        self.arrivals.append(arrival)

    def ack(self, device: str, message_ids: Iterable[str], acked_ms: int) -> None:
        self.acks.append((device, tuple(message_ids), acked_ms))

    def presence(self, device: str, *, online: bool, at_ms: int) -> None:
        self.presences.append((device, online, at_ms))

    def replay(self, observer: FleetObserver) -> None:
        for device, online, at_ms in self.presences:
            observer.presence(device, online=online, at_ms=at_ms)
        for arrival in self.arrivals:
            observer.arrive(arrival)
        for device, ids, acked_ms in self.acks:
            observer.ack(device, ids, acked_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevicePlan:
    """One device of a fleet."""

    device_id: str
    behaviour: Behaviour
    platform: str = "android"
    user: str | None = None  # the user it belongs to (bound by itself or by the driver)
    local_address: str | None = None  # source IP, e.g. 127.0.0.5


@dataclass(slots=True)
class FleetCounts:
    """Live counters, changed only by the fleet's tasks."""

    devices: int = 0  # planned
    started: int = 0  # joined (late joiners count once their delay is over)
    connected: int = 0  # holding a connection after `welcome` now
    ever_connected: int = 0  # got at least one `welcome`
    connects: int = 0  # `welcome`s in total
    away: int = 0  # of those, on a node other than the device's home (after a fail-over)
    disconnects: int = 0
    received: int = 0  # distinct pushes (per device)
    repeats: int = 0  # pushes a device had already received
    acked: int = 0  # ids sent in `ack` frames (repeats included)
    bound: int = 0  # devices that bound themselves with a `bind` frame
    storms: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Fleet:
    """Runs the devices of `plans`; see the module docstring. A Fleet runs once.

    `device_options` are extra `DeviceConfig` fields for every device (ack
    batching, backoff, ...), applied before each behaviour's own changes.
    """

    def __init__(
        self,
        plans: Sequence[DevicePlan],
        *,
        url: str,
        app: str,
        secret: str,
        observer: FleetObserver | None = None,
        connect_concurrency: int = 100,
        first_connect_timeout: float = 30.0,
        close_timeout: float = 5.0,
        seed: int | str | None = None,
        device_options: dict[str, Any] | None = None,
    ) -> None:
        if connect_concurrency < 1:
            raise ValueError("connect_concurrency must be >= 1")
        ids = [plan.device_id for plan in plans]
        if len(set(ids)) != len(ids):
            raise ValueError("device ids must be unique within a fleet")
        self.plans = list(plans)
        self.url = url
        self.app = app
        self.secret = secret
        self.observer: FleetObserver = observer if observer is not None else FleetLog()
        self.first_connect_timeout = first_connect_timeout
        self.close_timeout = close_timeout
        self.seed = seed if seed is not None else random.randrange(2**32)
        self.device_options = dict(device_options or {})
        self.devices: dict[str, Device] = {}
        self.counts = FleetCounts(devices=len(self.plans))
        self._connect_limiter = trio.CapacityLimiter(connect_concurrency)
        self._changed = trio.Event()
        self._closing = trio.Event()
        self._done = trio.Event()
        self._ran = False
        self._acts: list[trio.CancelScope] = []

    def __repr__(self) -> str:
        c = self.counts
        return f"<Fleet {c.connected}/{c.devices} connected>"

    @property
    def log(self) -> FleetLog | None:
        """The records, when no other observer was given."""
        return self.observer if isinstance(self.observer, FleetLog) else None

    # --- running ----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every device and run until `close()` (or cancellation).

        `task_status.started()` comes at once; use `wait_until()` to wait for
        connections. On `close()` every device closes gracefully (bounded by
        `close_timeout`), then whatever is left is cancelled.
        """
        if self._ran:
            raise RuntimeError("a Fleet runs once; make a new one")
        self._ran = True
        try:
            async with trio.open_nursery() as nursery:
                for plan in self.plans:
                    nursery.start_soon(self._life, nursery, plan)
                task_status.started()
                await self._closing.wait()
                # Behaviours first: no drop or stall while the devices close.
                for scope in self._acts:
                    scope.cancel()
                with trio.move_on_after(self.close_timeout):
                    async with trio.open_nursery() as closer:
                        for device in self.devices.values():
                            closer.start_soon(device.close, self.close_timeout)
                nursery.cancel_scope.cancel()
        finally:
            self._done.set()
            self._notify()

    async def close(self) -> None:
        """Stop every device; returns once `run()` is over (bounded)."""
        self._closing.set()
        if self._ran:
            with trio.move_on_after(self.close_timeout + 1.0):
                await self._done.wait()

    async def storm(self) -> int:
        """A reconnect storm: every connected device loses its connection at
        once (no goodbye); they all come back by their backoff, within
        ~`backoff_base` seconds. Returns how many were dropped."""
        victims = [d for d in self.devices.values() if d.connected]
        async with trio.open_nursery() as nursery:
            for device in victims:
                nursery.start_soon(device.drop)
        self.counts.storms += 1
        self._notify()
        return len(victims)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds (checked on every change of the
        counters); `trio.TooSlowError` after `timeout` seconds."""
        await trio.lowlevel.checkpoint()
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    def device_config(self, plan: DevicePlan) -> DeviceConfig:
        # Several gateway nodes (URLs separated by commas): each device has a home
        # node and fails over to the next ones, round robin, when it loses it.
        urls = self.url.split(",")
        home = zlib.crc32(plan.device_id.encode()) % len(urls)
        config = DeviceConfig(
            url=urls[home],
            fallback_urls=tuple(urls[home + 1 :] + urls[:home]),
            app=self.app,
            device_id=plan.device_id,
            platform=plan.platform,
            secret=self.secret,
            local_address=plan.local_address,
            **self.device_options,
        )
        return plan.behaviour.configure(config)

    # --- one device ---------------------------------------------------------------

    async def _life(self, nursery: trio.Nursery, plan: DevicePlan) -> None:
        rng = random.Random(f"{self.seed}:{plan.device_id}")
        delay = plan.behaviour.join_delay(rng)
        if delay > 0:
            await trio.sleep(delay)
        name = plan.device_id
        device = Device(
            self.device_config(plan),
            on_push=partial(self._on_push, name, False),
            on_duplicate=partial(self._on_push, name, True),
            on_acked=partial(self._on_acked, name),
            on_connection=partial(self._on_connection, name),
            rng=rng,
        )
        self.devices[name] = device
        self.counts.started += 1
        self._notify()
        async with self._connect_limiter:
            nursery.start_soon(device.run)
            # Hold the slot until the first welcome (or a while): this bounds
            # the connects in flight, not the devices.
            with trio.move_on_after(self.first_connect_timeout):
                await device.wait_for(
                    lambda: device.welcomes > 0 or device.stop_reason is not None, math.inf
                )
        ctx = ActContext(rng=rng, user=plan.user, on_bound=self._on_bound)
        with trio.CancelScope() as scope:
            self._acts.append(scope)
            if self._closing.is_set():
                scope.cancel()
            await plan.behaviour.act(device, ctx)

    def _on_push(self, name: str, repeat: bool, record: ReceivedPush) -> None:
        if repeat:
            self.counts.repeats += 1
        else:
            self.counts.received += 1
        offset = self.devices[name].server_clock_offset_ms or 0
        self.observer.arrive(
            Arrival(
                device=name,
                message_id=record.push.id,
                received_ms=record.received_ms,
                session=record.session,
                expires_ms=record.push.expires,
                clock_offset_ms=offset,
            )
        )
        self._notify()

    def _on_acked(self, name: str, ids: Sequence[str]) -> None:
        self.counts.acked += len(ids)
        self.observer.ack(name, ids, wall_ms())
        self._notify()

    def _on_connection(self, name: str, online: bool) -> None:
        c = self.counts
        if online:
            c.connected += 1
            c.connects += 1
            device = self.devices[name]
            c.away += device.url != device.config.url
            if device.welcomes == 1:
                c.ever_connected += 1
        else:
            c.connected -= 1
            c.disconnects += 1
        self.observer.presence(name, online=online, at_ms=wall_ms())
        self._notify()

    def _on_bound(self, user: str) -> None:
        self.counts.bound += 1
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

"""How simulated devices behave: the building blocks of a fleet.

A `Behaviour` shapes one device in three ways: `configure()` adjusts its
`DeviceConfig` (ack mode, ...), `join_delay()` says when it first connects,
and `act()` runs beside the device for its whole life (dropping its
connection now and then, stalling its reads, binding it to a user).

    steady     connects at once, acks each push immediately
    flaky      loses its connection (no goodbye, like a network failure) after
               a random uptime, exponential with mean `flaky_uptime` seconds,
               and reconnects with the device's backoff
    slow       a slow reader: acks each push `slow_ack_delay` s after reading
               it, with room for one pending ack, so it stops reading while
               acks wait and takes in only two or three pushes per
               `slow_ack_delay`; on top, stalls (reads nothing) for
               `stall_for` s at random, about every `stall_every` s
    never-ack  reads everything, acks nothing: every reconnect replays it all
    late       a late joiner: connects after a delay uniform in
               [0, `late_window`] s, to find its backlog waiting
    bind       binds itself to its user with a signed `bind` frame once
               connected (the other devices of a user-push run are bound with
               `POST /v1/bindings`)

Reconnect storms (every device drops at once and comes back) are fleet-wide:
see `Fleet.storm()`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import ClassVar

import trio

from .config import DeviceConfig
from .device import Device
from .errors import ConnectionClosed


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviourParams:
    """The knobs of every behaviour, in seconds."""

    flaky_uptime: float = 20.0
    slow_ack_delay: float = 0.05
    stall_every: float = 5.0
    stall_for: float = 2.0
    late_window: float = 5.0

    def __post_init__(self) -> None:
        for name in ("flaky_uptime", "stall_every"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("slow_ack_delay", "stall_for", "late_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(slots=True, kw_only=True)
class ActContext:
    """What `Behaviour.act()` gets besides the device."""

    rng: random.Random
    user: str | None = None  # the user this device belongs to, if any
    on_bound: Callable[[str], None] = lambda user: None


class Behaviour:
    """A steady device; subclasses change what they need."""

    name: ClassVar[str] = "steady"
    binds: ClassVar[bool] = False  # binds itself to its user (bind frame)

    def __init__(self, params: BehaviourParams | None = None) -> None:
        self.params = params or BehaviourParams()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def configure(self, config: DeviceConfig) -> DeviceConfig:
        return config

    def join_delay(self, rng: random.Random) -> float:
        """Seconds to wait before the first connect."""
        return 0.0

    async def act(self, device: Device, ctx: ActContext) -> None:
        """Runs beside the device from its start until the fleet stops."""


class Steady(Behaviour):
    name = "steady"


class Flaky(Behaviour):
    name = "flaky"

    async def act(self, device: Device, ctx: ActContext) -> None:
        while True:
            await device.wait_for(lambda: device.connected, math.inf)
            await trio.sleep(ctx.rng.expovariate(1 / self.params.flaky_uptime))
            await device.drop()


class SlowReader(Behaviour):
    name = "slow"

    def configure(self, config: DeviceConfig) -> DeviceConfig:
        # One pending ack at a time: the reader waits while the ack loop waits.
        return replace(
            config, ack_mode="delayed", ack_delay=self.params.slow_ack_delay, ack_queue_size=1
        )

    async def act(self, device: Device, ctx: ActContext) -> None:
        if self.params.stall_for <= 0:
            return
        while True:
            await trio.sleep(ctx.rng.expovariate(1 / self.params.stall_every))
            device.stall(self.params.stall_for)
            await trio.sleep(self.params.stall_for)


class NeverAck(Behaviour):
    name = "never-ack"

    def configure(self, config: DeviceConfig) -> DeviceConfig:
        return replace(config, ack_mode="never")


class LateJoiner(Behaviour):
    name = "late"

    def join_delay(self, rng: random.Random) -> float:
        return rng.uniform(0, self.params.late_window)


class Binder(Behaviour):
    name = "bind"
    binds = True

    async def act(self, device: Device, ctx: ActContext) -> None:
        if ctx.user is None:
            return
        while True:
            await device.wait_for(lambda: device.connected, math.inf)
            try:
                await device.bind(ctx.user)
            except (ConnectionClosed, trio.TooSlowError):
                # Lost the connection meanwhile: bind on the next one.
                await trio.sleep(0.05)
                continue
            ctx.on_bound(ctx.user)
            return


BEHAVIOURS: dict[str, type[Behaviour]] = {
    cls.name: cls for cls in (Steady, Flaky, SlowReader, NeverAck, LateJoiner, Binder)
}


def make_behaviour(name: str, params: BehaviourParams | None = None) -> Behaviour:
    """The behaviour called `name` (see `BEHAVIOURS`); `ValueError` if unknown."""
    try:
        cls = BEHAVIOURS[name]
    except KeyError:
        known = ", ".join(BEHAVIOURS)
        raise ValueError(f"unknown behaviour {name!r}; known: {known}") from None
    return cls(params)

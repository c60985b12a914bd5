"""`SimConfig` and what follows from it: which device does what, and what gets pushed.

Pure functions of the configuration (and its seed), so the parent of a
multi-process run and its workers agree on every device without talking.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .behaviours import BEHAVIOURS, BehaviourParams, make_behaviour
from .driver import MAX_MULTIPLE_TARGETS, PushJob
from .fleet import DevicePlan

PushType = Literal["simple", "multiple", "broadcast", "user"]
PUSH_TYPES: tuple[str, ...] = ("simple", "multiple", "broadcast", "user")
PlatformMix = Literal["android", "ios", "mixed"]
STORM = "storm"  # a pseudo-behaviour: steady devices, and the whole fleet storms
BEHAVIOUR_NAMES: tuple[str, ...] = (*BEHAVIOURS, STORM)
DEFAULT_STORM_EVERY = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """One simulator run. Times in seconds unless named otherwise.

    `behaviours` maps behaviour names (see `client_sim.behaviours`, plus
    "storm") to relative weights: (("steady", 3), ("flaky", 1)) makes a
    quarter of the fleet flaky. `messages` or `duration` bounds the push
    phase (`messages` wins if both are given; 1000 messages if neither).
    """

    api: str
    url: str  # the devices' gateway URL: ws://…/v1/connect or tcp://…
    app: str
    api_key: str
    secret: str

    devices: int = 100
    behaviours: tuple[tuple[str, float], ...] = (("steady", 1.0),)
    params: BehaviourParams = field(default_factory=BehaviourParams)
    storm_every: float | None = None  # default DEFAULT_STORM_EVERY when "storm" is chosen
    platform: PlatformMix = "android"
    devices_per_user: int = 2
    device_prefix: str = ""  # default: "sim-<random>-"

    push_type: PushType = "simple"
    rate: float = 0.0  # messages per second; 0 = as fast as the gateway answers
    messages: int | None = None
    duration: float | None = None
    batch_size: int = 100  # targets per `multiple` request
    expired_seconds: int = 3600
    concurrency: int = 32  # HTTP requests in flight

    processes: int = 1  # >1: devices run in that many worker processes
    source_addresses: tuple[str, ...] = ()
    connect_concurrency: int = 200  # first connects in flight, per process
    connect_timeout: float = 60.0  # for the fleet's first connections
    drain_timeout: float = 30.0  # after the last push, to wait for deliveries
    late_tolerance_ms: int = 1000
    grace_ms: int = 2000
    seed: int = 0
    ack_mode: str = "immediate"  # for steady, flaky, late and bind devices

    def __post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError("devices must be >= 1")
        if not self.behaviours or any(w <= 0 for _, w in self.behaviours):
            raise ValueError("behaviours need positive weights")
        for name, _ in self.behaviours:
            if name not in BEHAVIOUR_NAMES:
                raise ValueError(f"unknown behaviour {name!r}; known: {', '.join(BEHAVIOUR_NAMES)}")
        if self.push_type not in PUSH_TYPES:
            raise ValueError(f"push_type must be one of {PUSH_TYPES}")
        if not 1 <= self.batch_size <= MAX_MULTIPLE_TARGETS:
            raise ValueError(f"batch_size must be 1..{MAX_MULTIPLE_TARGETS}")
        if self.rate < 0 or self.concurrency < 1 or self.processes < 1:
            raise ValueError("rate >= 0, concurrency >= 1 and processes >= 1")
        if self.messages is not None and self.messages < 0:
            raise ValueError("messages must be >= 0")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        if not 1 <= self.expired_seconds <= 2_592_000:
            raise ValueError("expired_seconds must be 1..2592000")
        if self.devices_per_user < 1:
            raise ValueError("devices_per_user must be >= 1")

    def make_prefix(self) -> str:
        """The device id prefix: `device_prefix`, or a fresh random one, so runs on
        a long-lived gateway do not inherit each other's pending messages."""
        return self.device_prefix or f"sim-{secrets.token_hex(3)}-"

    @property
    def message_limit(self) -> int | None:
        """Messages to push: None when the run is bounded by duration only."""
        if self.messages is not None:
            return self.messages
        return None if self.duration is not None else 1000

    @property
    def storm_interval(self) -> float | None:
        if self.storm_every is not None:
            return self.storm_every
        if any(name == STORM for name, _ in self.behaviours):
            return DEFAULT_STORM_EVERY
        return None

    @property
    def needs_users(self) -> bool:
        return self.push_type == "user" or any(name == "bind" for name, _ in self.behaviours)


def apportion(total: int, weights: Sequence[tuple[str, float]]) -> list[tuple[str, int]]:
    """Split `total` by weight (largest remainder): the counts add up to `total`."""
    weight_sum = sum(w for _, w in weights)
    exact = [(name, total * w / weight_sum) for name, w in weights]
    counts = [(name, int(x)) for name, x in exact]
    left = total - sum(c for _, c in counts)
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i][1] - counts[i][1], reverse=True)
    for i in by_remainder[:left]:
        counts[i] = (counts[i][0], counts[i][1] + 1)
    return counts


def plan_devices(config: SimConfig, prefix: str) -> list[DevicePlan]:
    """Every device of the run: id, behaviour, platform, user, source address."""
    names: list[str] = []
    for name, count in apportion(config.devices, config.behaviours):
        names += [name] * count
    random.Random(config.seed).shuffle(names)
    width = len(str(config.devices - 1))
    plans = []
    for i, name in enumerate(names):
        behaviour = make_behaviour("steady" if name == STORM else name, config.params)
        if config.platform == "mixed":
            platform = "android" if i % 2 == 0 else "ios"
        else:
            platform = config.platform
        user = f"{prefix}u{i // config.devices_per_user}" if config.needs_users else None
        address = (
            config.source_addresses[i % len(config.source_addresses)]
            if config.source_addresses
            else None
        )
        plans.append(
            DevicePlan(
                device_id=f"{prefix}{i:0{width}d}",
                behaviour=behaviour,
                platform=platform,
                user=user,
                local_address=address,
            )
        )
    return plans


def push_jobs(config: SimConfig, plans: Sequence[DevicePlan]) -> Iterator[PushJob]:
    """The requests of the push phase, in order; endless if the run has no message limit."""
    limit = config.message_limit
    jobs = _endless_jobs(config, plans)
    if limit is None:
        yield from jobs
        return
    left = limit
    for job in jobs:
        if left <= 0:
            return
        if job.messages > left:
            job = PushJob.multiple(job.targets[:left], platform=job.delivery_type)
        yield job
        left -= job.messages


def _endless_jobs(config: SimConfig, plans: Sequence[DevicePlan]) -> Iterator[PushJob]:
    if config.push_type == "simple":
        for plan in itertools.cycle(plans):
            yield PushJob.device(plan.device_id, platform=plan.platform)
    elif config.push_type == "user":
        users: dict[str, list[str]] = {}
        for plan in plans:
            assert plan.user is not None
            users.setdefault(plan.user, []).append(plan.device_id)
        for user, devices in itertools.cycle(users.items()):
            yield PushJob.user(user, devices)
    elif config.push_type == "multiple":
        by_platform: dict[str, list[str]] = {}
        for plan in plans:
            by_platform.setdefault(plan.platform, []).append(plan.device_id)
        cursors = {platform: itertools.cycle(ids) for platform, ids in by_platform.items()}
        for platform in itertools.cycle(sorted(by_platform)):
            size = min(config.batch_size, len(by_platform[platform]))
            batch = [next(cursors[platform]) for _ in range(size)]
            yield PushJob.multiple(batch, platform=platform)
    else:
        everyone = frozenset(plan.device_id for plan in plans)
        while True:
            yield PushJob.broadcast(everyone)

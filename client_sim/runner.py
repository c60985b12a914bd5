"""`run_sim`: a whole simulator run — fleet, pushes, drain, verdict.

    config = SimConfig(api=API, url=WS_URL, app="demo", api_key=KEY, secret=SECRET,
                       devices=500, behaviours=(("flaky", 1.0),), messages=5000)
    result = await run_sim(config)
    assert result.verdict.ok, result.verdict.failures

Phases: *connecting* (start the fleet, wait until every device that is not a
late joiner got its first `welcome`), *binding* (user pushes: bind the devices
to their users, with `POST /v1/bindings` or, for "bind" devices, their own
`bind` frames), *pushing* (the driver, with reconnect storms if asked),
*draining* (wait until every expected delivery arrived, at most
`drain_timeout` s, then a moment for the last acks), *closing* (the fleet
closes; then the oracle judges).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from .driver import ApiError, DriverStats, PushDriver
from .fleet import Fleet, FleetCounts
from .oracle import Oracle, Verdict
from .plan import SimConfig, plan_devices, push_jobs
from .received import wall_ms
from .worker import WorkerPool, raise_open_files_limit

ACK_SETTLE = 0.5  # s without new acks before the drain ends
ACK_SETTLE_MAX = 3.0


class SimError(Exception):
    """The run could not happen (no device could connect, bindings failed, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """A snapshot for live displays."""

    phase: str
    elapsed: float
    devices: int
    started: int
    connected: int
    ever_connected: int
    target_messages: int | None
    sent: int
    accepted: int
    expected: int  # deliveries expected so far (of accepted messages)
    delivered: int  # of those, received
    acked: int  # of those, acked
    arrivals: int  # every push frame received, repeats included
    storms: int
    rejected: int


@dataclass(slots=True, kw_only=True)
class SimResult:
    config: SimConfig
    prefix: str
    processes: int
    started_ms: int
    ended_ms: int
    phases: dict[str, float]  # seconds per phase
    driver: DriverStats
    counts: FleetCounts
    verdict: Verdict
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def push_rate(self) -> float:
        """Messages accepted per second of the pushing phase."""
        seconds = self.phases.get("pushing", 0.0)
        return self.driver.messages / seconds if seconds > 0 else 0.0

    @property
    def delivery_rate(self) -> float:
        """Deliveries per second, from the first push to the last first arrival."""
        v = self.verdict
        if v.first_push_ms is None or v.last_delivery_ms is None:
            return 0.0
        span = (v.last_delivery_ms - v.first_push_ms) / 1000
        return v.delivered / span if span > 0 else 0.0


class _Run:
    """The state of one run, shared by its phases and the progress task."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.prefix = config.make_prefix()
        self.plans = plan_devices(config, self.prefix)
        self.oracle = Oracle(late_tolerance_ms=config.late_tolerance_ms, grace_ms=config.grace_ms)
        self.phase = "starting"
        self.phases: dict[str, float] = {}
        self.warnings: list[str] = []
        self.start = trio.current_time()
        self._phase_start = self.start
        device_options: dict[str, Any] = {"ack_mode": config.ack_mode, "history_limit": 20_000}
        self.side: Fleet | WorkerPool
        if config.processes > 1:
            self.side = WorkerPool(
                self.plans,
                processes=config.processes,
                url=config.url,
                app=config.app,
                secret=config.secret,
                observer=self.oracle,
                params=config.params,
                connect_concurrency=config.connect_concurrency,
                first_connect_timeout=config.connect_timeout,
                seed=config.seed,
                device_options=device_options,
            )
        else:
            self.side = Fleet(
                self.plans,
                url=config.url,
                app=config.app,
                secret=config.secret,
                observer=self.oracle,
                connect_concurrency=config.connect_concurrency,
                first_connect_timeout=config.connect_timeout,
                seed=config.seed,
                device_options=device_options,
            )
        self.driver: PushDriver | None = None

    @property
    def processes(self) -> int:
        return self.side.processes if isinstance(self.side, WorkerPool) else 1

    def enter(self, phase: str) -> None:
        now = trio.current_time()
        self.phases[self.phase] = self.phases.get(self.phase, 0.0) + now - self._phase_start
        self.phase, self._phase_start = phase, now

    def progress(self) -> Progress:
        counts, oracle, driver = self.side.counts, self.oracle, self.driver
        stats = driver.stats if driver is not None else DriverStats()
        return Progress(
            phase=self.phase,
            elapsed=trio.current_time() - self.start,
            devices=counts.devices,
            started=counts.started,
            connected=counts.connected,
            ever_connected=counts.ever_connected,
            target_messages=self.config.message_limit,
            sent=driver.sent_messages if driver is not None else 0,
            accepted=stats.messages,
            expected=oracle.delivered + oracle.outstanding,
            delivered=oracle.delivered,
            acked=oracle.acked,
            arrivals=oracle.arrivals,
            storms=counts.storms,
            rejected=sum(stats.rejected.values()) + sum(stats.failed.values()),
        )


async def run_sim(
    config: SimConfig,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_interval: float = 0.25,
) -> SimResult:
    """Run the simulation described by `config`; see the module docstring."""
    raise_open_files_limit()
    run = _Run(config)
    started_ms = wall_ms()
    async with PushDriver.open(
        config.api,
        config.api_key,
        concurrency=config.concurrency,
        on_accepted=run.oracle.accept,
        expired_seconds=config.expired_seconds,
    ) as driver:
        run.driver = driver
        failure: SimError | None = None
        async with trio.open_nursery() as nursery:
            if on_progress is not None:
                nursery.start_soon(_report_progress, run, on_progress, progress_interval)
            run.enter("connecting")
            await nursery.start(run.side.run)
            try:
                await _phases(run, driver)
            except SimError as exc:
                # Raised below, outside the nursery: no exception group to unwrap.
                failure = exc
            run.enter("closing")
            await run.side.close()
            ended_ms = wall_ms()
            run.enter("done")
            if on_progress is not None:
                on_progress(run.progress())
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return SimResult(
        config=config,
        prefix=run.prefix,
        processes=run.processes,
        started_ms=started_ms,
        ended_ms=ended_ms,
        phases={k: v for k, v in run.phases.items() if k != "starting"},
        driver=driver.stats,
        counts=run.side.counts,
        verdict=run.oracle.verdict(end_ms=ended_ms),
        warnings=run.warnings,
    )


async def _phases(run: _Run, driver: PushDriver) -> None:
    await _connect(run)
    if run.config.push_type == "user":
        run.enter("binding")
        await _bind(run, driver)
    run.enter("pushing")
    await _push(run, driver)
    run.enter("draining")
    await _drain(run)


async def _report_progress(run: _Run, report: Callable[[Progress], None], interval: float) -> None:
    while True:
        report(run.progress())
        await trio.sleep(interval)


async def _connect(run: _Run) -> None:
    on_time = sum(1 for p in run.plans if p.behaviour.name != "late")
    counts = run.side.counts
    try:
        await run.side.wait_until(
            lambda: counts.ever_connected >= on_time, timeout=run.config.connect_timeout
        )
    except trio.TooSlowError:
        if counts.ever_connected == 0 and on_time > 0:
            raise SimError(
                f"no device could connect to {run.config.url} within {run.config.connect_timeout} s"
            ) from None
        run.warnings.append(
            f"only {counts.ever_connected} of {on_time} devices connected within"
            f" {run.config.connect_timeout} s"
        )


async def _bind(run: _Run, driver: PushDriver) -> None:
    """Bind every device to its user before the first user push."""
    by_api = [p for p in run.plans if not p.behaviour.binds and p.user is not None]
    binders = len(run.plans) - len(by_api)
    slots = trio.Semaphore(run.config.concurrency)
    refused: list[str] = []

    async def bind_one(user: str, device_id: str) -> None:
        async with slots:
            try:
                await driver.bind(user, device_id)
            except ApiError:
                refused.append(device_id)

    async with trio.open_nursery() as nursery:
        for plan in by_api:
            assert plan.user is not None
            nursery.start_soon(bind_one, plan.user, plan.device_id)
    if refused:
        problems = dict(driver.stats.rejected) | dict(driver.stats.failed)
        raise SimError(f"{len(refused)} bindings failed ({problems})")
    counts = run.side.counts
    try:
        await run.side.wait_until(lambda: counts.bound >= binders, run.config.connect_timeout)
    except trio.TooSlowError:
        raise SimError(
            f"only {counts.bound} of {binders} devices bound themselves within"
            f" {run.config.connect_timeout} s"
        ) from None


async def _push(run: _Run, driver: PushDriver) -> None:
    config = run.config
    interval = config.storm_interval
    async with trio.open_nursery() as nursery:
        if interval is not None:

            async def storms() -> None:
                while True:
                    await trio.sleep(interval)
                    await run.side.storm()

            nursery.start_soon(storms)
        await driver.run(
            push_jobs(config, run.plans),
            rate=config.rate,
            duration=config.duration,
            concurrency=config.concurrency,
        )
        nursery.cancel_scope.cancel()


async def _drain(run: _Run) -> None:
    """Wait until every expected delivery arrived and every late joiner joined
    (at most `drain_timeout`), then until the acks settle."""
    oracle, counts = run.oracle, run.side.counts
    try:
        # The fleet's counters change with every arrival.
        await run.side.wait_until(
            lambda: oracle.outstanding <= 0 and counts.started >= counts.devices,
            run.config.drain_timeout,
        )
    except trio.TooSlowError:
        run.warnings.append(
            f"drain timeout: {oracle.outstanding} deliveries still missing after"
            f" {run.config.drain_timeout} s"
        )
    with trio.move_on_after(ACK_SETTLE_MAX):
        last = -1
        while oracle.acked != last:
            last = oracle.acked
            await trio.sleep(ACK_SETTLE)

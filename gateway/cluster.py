"""One node of a gateway made of many: the hub's `Peers`, on a broker (Redis) and a
store every node shares (PostgreSQL).

The store is the truth; the broker only carries hints. A device's connection
takes a fencing epoch in the store, then its route in the broker (the newest
epoch wins, an older connection elsewhere is kicked). A push committed here
for a device connected elsewhere is hinted to that node; a broadcast, a
revoke and a (un)bind likewise. Hints may be lost, so the node re-reads from
the store what concerns its own devices whenever its subscription (re)connects
and every `sweep_interval` seconds (cluster_sweep.py: their users, broadcasts
and unacked deliveries): a lost hint delays a message, never loses it.
Nothing here holds what is not also in the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from gateway.broker import (
    Bind,
    Broadcast,
    Broker,
    BrokerConfig,
    BrokerMessage,
    BrokerUnavailable,
    Config,
    Deliver,
    Inbound,
    Kick,
    NodeInfo,
    RedisBroker,
    Revoke,
    Unbind,
)
from gateway.broker import new_node_id as new_node_id
from gateway.clock import Clock
from gateway.cluster_sweep import ANY_SEQ, SweepCounts, Sweeper, SweepStore
from gateway.cluster_wire import decode_message, encode_message
from gateway.hub import Hub
from gateway.settings import Settings
from gateway.store import Message, PostgresStore, StoreUnavailable

log = logging.getLogger("pushgate.cluster")

HINT_QUEUE = 4096  # hints waiting to be published; past it they are dropped (the sweep brings them)
RETRY_CLAIMS = 100_000  # routes not claimed (broker down), retried by the sweep loop
PUBLISHERS = 4  # tasks publishing hints: each waits for Redis's answers
HINT_BATCH = 512  # hints a publisher takes at once: two Redis round trips for all of them
_T = TypeVar("_T")
# Test hook: hint kinds this node loses instead of publishing ("bind,unbind,broadcast"),
# to show that the other nodes' sweeps make up for lost hints.
LOSE_HINTS_ENV = "PUSHGATE_TEST_LOSE_HINTS"


class BrokerWithSqlite(ValueError):
    """A broker was given with a SQLite store: one SQLite file is one node's."""


def make_cluster(
    settings: Settings, store: object, clock: Clock, node_id: str, started_ms: int
) -> Cluster | None:
    """The node's cluster if `settings.broker` names one, else None (one node).

    ValueError for a bad broker setting; BrokerWithSqlite for a store other nodes
    cannot share (a SQLite file is written by one process: two nodes on one file
    would each cache devices and routes the other cannot see)."""
    if settings.broker is None:
        return None
    if not isinstance(store, PostgresStore):
        raise BrokerWithSqlite(
            "--broker needs a store every node shares: --store postgresql://…"
            " (a SQLite file belongs to one node)"
        )
    try:
        config = BrokerConfig(url=settings.broker, prefix=settings.broker_prefix)
    except ValueError as exc:
        raise BrokerSettingError(str(exc)) from None
    info = NodeInfo(node_id=node_id, host=settings.host, pid=os.getpid(), started_ms=started_ms)
    lose = frozenset(k for k in os.environ.get(LOSE_HINTS_ENV, "").split(",") if k)
    if lose:
        log.warning("event=test_hook %s=%s", LOSE_HINTS_ENV, ",".join(sorted(lose)))
    return Cluster(
        config, info, store, clock, sweep_interval=settings.sweep_interval, lose_hints=lose
    )


def cluster_problem(exc: BaseException) -> str | None:
    """One line saying why this node cannot join its cluster at start (the broker is
    unreachable, a bad broker setting, a broker with SQLite), found in `exc` or the
    groups around it; None if `exc` is something else."""
    if isinstance(exc, BrokerUnavailable):
        return f"cannot reach the broker: {exc}"
    if isinstance(exc, BrokerWithSqlite):
        return str(exc)
    if isinstance(exc, BrokerSettingError):
        return f"bad broker setting: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (problem := cluster_problem(inner)) is not None:
                return problem
    return None


class BrokerSettingError(ValueError):
    """--broker (or its prefix) is not usable."""


class ClusterStore(SweepStore, Protocol):
    async def claim_device(self, app_id: str, device_id: str, node_id: str) -> int: ...


@dataclass(slots=True)
class ClusterStatistics:
    hints_sent: int = 0
    hints_dropped: int = 0  # the queue was full or the broker down: the sweep brings them
    hints_received: int = 0
    swept: int = 0  # deliveries re-sent by a sweep or a resync
    sweeps: int = 0
    rebound: int = 0  # sessions whose user a sweep corrected (a bind/unbind hint lost)
    broadcasts_opened: int = 0  # broadcast deliveries a sweep opened (a broadcast hint lost)
    kicks_sent: int = 0


_Hint = tuple[str, Message, list[str]] | BrokerMessage  # a deliver, or one to publish to all


class Cluster:
    """Start with `nursery.start(cluster.run)` once the hub exists (`attach`)."""

    def __init__(
        self,
        config: BrokerConfig,
        info: NodeInfo,
        store: ClusterStore,
        clock: Clock,
        *,
        sweep_interval: float,
        lose_hints: frozenset[str] = frozenset(),
    ) -> None:
        if sweep_interval <= 0:
            raise ValueError("sweep_interval must be > 0")
        self.broker: Broker = RedisBroker(
            config, info, on_resubscribed=self.resync, online_counts=self._online_counts
        )
        self.store = store
        self.clock = clock
        self.sweep_interval = sweep_interval
        self.sweeper = Sweeper(store, int(sweep_interval * 1000), info.started_ms)
        self.stats = ClusterStatistics()
        self._hub: Hub | None = None
        self._hints_send, self._hints = trio.open_memory_channel[_Hint](HINT_QUEUE)
        self._unclaimed: dict[tuple[str, str], int] = {}  # routes to claim again
        self._lose_hints = lose_hints
        self._resync_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None

    @property
    def node_id(self) -> str:
        return self.broker.node_id

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise RuntimeError("the cluster has no hub yet")
        return self._hub

    def announce(self, host: str, api: str, ws_port: int, tcp_port: int) -> None:
        """The node's addresses, once bound, in its liveness key (GET /v1/nodes)."""
        api_port = int(api.rsplit(":", 1)[1])
        ports = {"api": api_port, "ws": ws_port, "tcp": tcp_port}
        old = self.broker.info
        info = NodeInfo(
            node_id=old.node_id, host=host, ports=ports, pid=old.pid, started_ms=old.started_ms
        )
        self.broker.set_info(info)
        if self._nursery is not None:  # listed with its ports now, not at the next beat
            self._nursery.start_soon(self._beat)

    async def _beat(self) -> None:
        try:
            await self.broker.heartbeat()
        except BrokerUnavailable:
            pass  # the broker's own heartbeat retries

    def _online_counts(self) -> dict[str, int]:
        return {} if self._hub is None else self._hub.online_counts()

    def attach(self, hub: Hub) -> None:
        self._hub = hub
        hub.peers = self

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the broker (BrokerUnavailable if Redis cannot be used at start), read its
        inbox, publish hints, sweep; until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.broker.run)
            nursery.start_soon(self._read_inbox)
            for _ in range(PUBLISHERS):
                nursery.start_soon(self._publish_hints)
            nursery.start_soon(self._sweep_loop)
            self._nursery = nursery
            task_status.started()

    # --- the hub's Peers ---------------------------------------------------------

    async def claim(self, app_id: str, device_id: str) -> tuple[int, bool]:
        epoch = await self.store.claim_device(app_id, device_id, self.node_id)
        try:
            if not self.broker.health.ok:  # do not make every hello wait for Redis's timeout
                raise BrokerUnavailable("the broker is unhealthy")
            claim = await self.broker.claim_route(app_id, device_id, epoch)
        except BrokerUnavailable:
            # Keep the device: its route is claimed by the sweep loop once Redis is back
            # (meanwhile pushes from other nodes reach it through the sweep).
            if len(self._unclaimed) < RETRY_CLAIMS:
                self._unclaimed[(app_id, device_id)] = epoch
            return epoch, True
        previous = claim.previous
        if claim.won and previous is not None and previous.node_id != self.node_id:
            await self._kick(previous.node_id, app_id, device_id, epoch)
        return epoch, claim.won

    async def _kick(self, node_id: str, app_id: str, device_id: str, epoch: int) -> None:
        try:
            await self.broker.publish(node_id, Kick(app=app_id, device=device_id, epoch=epoch))
            self.stats.kicks_sent += 1
        except BrokerUnavailable:
            pass  # the old node's next route refresh finds the newer epoch and closes it

    async def release(self, app_id: str, device_id: str, epoch: int) -> None:
        self._unclaimed.pop((app_id, device_id), None)
        try:
            await self.broker.release_route(app_id, device_id, epoch)
        except BrokerUnavailable:
            pass  # the route expires; a deliver to it finds no device and the row waits

    def deliver(self, app_id: str, message: Message, device_ids: list[str]) -> None:
        self._hint((app_id, message, device_ids))

    def broadcast(self, app_id: str, message: Message) -> None:
        payload = encode_message(message)
        self._hint(Broadcast(app=app_id, message_id=message.message_id, payload=payload))

    def revoke(self, app_id: str, message_id: str) -> None:
        self._hint(Revoke(app=app_id, message_id=message_id))

    def rebound(self, app_id: str, device_id: str, user_id: str | None) -> None:
        message = (
            Unbind(app=app_id, device=device_id)
            if user_id is None
            else Bind(app=app_id, device=device_id, user=user_id)
        )
        # To every node: a route lookup first would cost as much, and binds are rare.
        self._hint(message)

    def _hint(self, hint: _Hint) -> None:
        kind = "deliver" if isinstance(hint, tuple) else type(hint).__name__.lower()
        if kind in self._lose_hints:
            self.stats.hints_dropped += 1
            return
        try:
            self._hints_send.send_nowait(hint)
        except trio.WouldBlock:
            self.stats.hints_dropped += 1

    # --- hints out ------------------------------------------------------------------

    async def _publish_hints(self) -> None:
        async for hint in self._hints:
            batch = [hint]
            while len(batch) < HINT_BATCH:  # whatever else waits goes in the same round trips
                try:
                    batch.append(self._hints.receive_nowait())
                except trio.WouldBlock:
                    break
            deliveries = [h for h in batch if isinstance(h, tuple)]
            if deliveries:
                await self._publish(self._deliver, deliveries, len(deliveries))
            for other in batch:
                if not isinstance(other, tuple):
                    await self._publish(self.broker.publish_all, other, 1)

    async def _publish(self, send: Callable[[_T], Awaitable[object]], what: _T, hints: int) -> None:
        try:
            await send(what)
            self.stats.hints_sent += hints
        except BrokerUnavailable:
            self.stats.hints_dropped += hints  # stored; the sweep of the device's node brings it

    async def _deliver(self, deliveries: list[tuple[str, Message, list[str]]]) -> None:
        items = [(app, m.message_id, encode_message(m), devices) for app, m, devices in deliveries]
        fans = await self.broker.deliver_many(items)
        for (app, message, _), fan in zip(deliveries, fans, strict=True):
            if fan.local:  # routed here, connected since the push was routed
                self.hub.deliver_here(app, message, fan.local)

    # --- hints in -------------------------------------------------------------------

    async def _read_inbox(self) -> None:
        async for inbound in self.broker.inbox:
            self.stats.hints_received += 1
            try:
                await self._receive(inbound)
            except ValueError as exc:
                log.warning("event=bad_hint origin=%s error=%r", inbound.origin, str(exc))
            except StoreUnavailable as exc:
                log.warning("event=hint_failed origin=%s error=%r", inbound.origin, str(exc))

    async def _receive(self, inbound: Inbound) -> None:
        hub, m = self.hub, inbound.message
        if isinstance(m, Deliver):
            hub.deliver_here(m.app, decode_message(m.payload), m.devices)
        elif isinstance(m, Kick):
            hub.kick(m.app, m.device, m.epoch)
        elif inbound.origin == self.node_id:
            return  # our own broadcast, revoke or bind: done here already
        elif isinstance(m, Broadcast):
            await hub.open_broadcast(m.app, decode_message(m.payload))
        elif isinstance(m, Revoke):
            hub.drop_everywhere_here(m.app, m.message_id)
        elif isinstance(m, Bind):
            hub.rebound_here(m.app, m.device, m.user, ANY_SEQ)
        elif isinstance(m, Unbind):
            hub.rebound_here(m.app, m.device, None, None)
        elif isinstance(m, Config):
            hub.forget_app(m.app)

    # --- the sweep: what a lost hint did not bring ------------------------------------

    async def resync(self, reason: str) -> None:
        """The broker's hook: hints may have been lost; re-send what is unacked now."""
        now = self.clock.now_ms()
        done = await self.sweep(created_before=now, sent_before=now - self._interval_ms)
        log.info(
            "event=resync reason=%s resent=%d rebound=%d broadcasts=%d",
            reason,
            done.resent,
            done.rebound,
            done.broadcasts,
        )

    @property
    def _interval_ms(self) -> int:
        return int(self.sweep_interval * 1000)

    async def _sweep_loop(self) -> None:
        while True:
            await trio.sleep(self.sweep_interval)
            await self._claim_again()
            now = self.clock.now_ms()
            cutoff = now - self._interval_ms
            try:
                await self.sweep(created_before=cutoff, sent_before=cutoff)
            except StoreUnavailable as exc:
                log.warning("event=sweep_failed error=%r", str(exc)[:200])

    async def sweep(self, *, created_before: int, sent_before: int) -> SweepCounts:
        """Correct the users of the sessions here, open the broadcasts their devices
        missed, re-send their unacked deliveries created before `created_before` and not
        sent since `sent_before` (cluster_sweep.py)."""
        async with self._resync_lock:
            done = await self.sweeper.sweep(
                self.hub, created_before=created_before, sent_before=sent_before
            )
            self.stats.sweeps += 1
            self.stats.swept += done.resent
            self.stats.rebound += done.rebound
            self.stats.broadcasts_opened += done.broadcasts
            return done

    async def _claim_again(self) -> None:
        """Routes a broker outage kept us from claiming at hello."""
        for (app_id, device_id), epoch in list(self._unclaimed.items()):
            if self.hub.connection(app_id, device_id) is None:
                self._unclaimed.pop((app_id, device_id), None)
                continue
            try:
                claim = await self.broker.claim_route(app_id, device_id, epoch)
            except BrokerUnavailable:
                return
            self._unclaimed.pop((app_id, device_id), None)
            if not claim.won:
                self.hub.kick(app_id, device_id, claim.current.epoch)

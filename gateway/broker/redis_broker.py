"""The broker on Redis (coredis, which runs on Trio through anyio).

Keys and channels are in `keys.py`, the atomic checks in `scripts.py`. One
`run()` task per node owns the client and its background work: the liveness
heartbeat (`liveness.py`), the subscriber (`subscriber.py`), the resync hook
(`resync.py`) and the refresh of this node's routes (`route_table.py`); hints
go out through `fanout.py`. Every call is bounded by `call_timeout` and fails
only with `BrokerUnavailable` (`calls.py`); each outcome updates `health`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import coredis
import trio
from coredis.retry import ConstantRetryPolicy

from .backoff import Backoff
from .base import Broker, BrokerStatistics
from .calls import Caller, Client, Scripts, only_unavailable
from .config import BrokerConfig, is_valid_node_id
from .errors import cancelled_part, describe, is_unavailability
from .fanout import Delivery, Publisher
from .health import BrokerHealth
from .keys import Keys
from .liveness import Liveness
from .messages import BrokerMessage, Inbound
from .model import Claim, FanOut, LiveNode, NodeInfo, Route
from .resync import OVERFLOW, RESUBSCRIBED, SUBSCRIBED, Resyncer, ResyncHook
from .route_table import RouteTable
from .subscriber import Subscriber

log = logging.getLogger("pushgate.broker")


class RedisBroker:
    """A node's connection to the shared routing layer; start it with `nursery.start(run)`."""

    def __init__(
        self,
        config: BrokerConfig,
        info: NodeInfo,
        *,
        on_resubscribed: ResyncHook | None = None,
        online_counts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """`on_resubscribed(reason)` re-reads the unacked deliveries of this node's devices.

        It runs (one at a time, coalesced) whenever hints may have been lost:
        each time the subscription is established ("subscribed",
        "resubscribed") and after the inbox overflowed ("overflow").
        `online_counts()` gives app → devices online here, for `live_nodes`.
        """
        if not is_valid_node_id(info.node_id):
            raise ValueError("node ID: 1-64 of A-Z a-z 0-9 . _ -")
        self.config = config
        self._info = info
        self._keys = Keys(config.prefix)
        self._health = BrokerHealth()
        self._inbox_send, self._inbox = trio.open_memory_channel[Inbound](config.inbox_size)
        self._resyncer = Resyncer(
            on_resubscribed,
            Backoff(config.backoff_min, config.backoff_max),
            overflow_interval=config.overflow_resync_interval,
        )
        self._caller = Caller(config, self._health)
        self._liveness = Liveness(
            config, self._keys, self._caller, lambda: self._info, online_counts
        )
        self._routes = RouteTable(
            config, self._keys, info.node_id, self._caller, self._inbox_send, self.publish
        )
        self._publisher = Publisher(config, self._keys, info.node_id, self._caller)
        self._ran = False
        self._subscriber: Subscriber | None = None

    # --- state ---------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self._info.node_id

    @property
    def health(self) -> BrokerHealth:
        return self._health

    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Inbound]:
        return self._inbox

    @property
    def info(self) -> NodeInfo:
        return self._info

    def set_info(self, info: NodeInfo) -> None:
        if info.node_id != self._info.node_id:
            raise ValueError("a broker's node ID cannot change")
        self._info = info

    def statistics(self) -> BrokerStatistics:
        sub = self._subscriber
        return BrokerStatistics(
            subscriptions=sub.subscriptions if sub else 0,
            received=sub.received if sub else 0,
            dropped=sub.dropped if sub else 0,
            bad_messages=sub.bad_messages if sub else 0,
            resyncs=self._resyncer.runs,
            resync_failures=self._resyncer.failures,
            heartbeats=self._liveness.heartbeats,
            route_refreshes=self._routes.refreshes,
            local_routes=len(self._routes.held),
            inbox_queued=self._inbox_send.statistics().current_buffer_used,
        )

    # --- lifetime --------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, register this node, subscribe; `started` once all three worked.

        Raises `BrokerUnavailable` (before `started`) if Redis cannot be used at
        start. Afterwards Redis failures never end it: the heartbeat, the
        subscriber and the route refresh retry until cancelled. When
        cancelled, the node deregisters and releases its routes (best effort,
        within `call_timeout`) so other nodes see it gone at once.
        """
        if self._ran:
            raise RuntimeError("a RedisBroker runs once; make a new one")
        self._ran = True
        started = False

        def mark_started() -> None:
            nonlocal started
            started = True
            task_status.started()

        try:
            try:
                async with self._new_client() as client:
                    self._caller.attach(client)
                    try:
                        await self._serve(client, mark_started)
                    finally:
                        self._caller.detach()
            finally:
                if started:
                    await self._deregister()
        except BaseExceptionGroup as group:
            # coredis's pool is an anyio task group: errors come out wrapped.
            unavailable = only_unavailable(group)
            if unavailable is not None:
                raise unavailable from None
            raise cancelled_part(group) from None

    def _new_client(self) -> Client:
        return coredis.Redis.from_url(
            self.config.url,
            stream_timeout=self.config.call_timeout,
            connect_timeout=self.config.call_timeout,
            pool_timeout=self.config.call_timeout,
            client_name=f"pushgate:{self.node_id}",
            retry_policy=ConstantRetryPolicy(
                (coredis.exceptions.ConnectionError,), retries=1, delay=0.05
            ),
        )

    async def _serve(self, client: Client, started: Callable[[], None]) -> None:
        await self._caller.call("ping", lambda c: c.ping())
        await self.heartbeat()
        self._subscriber = Subscriber(
            client,
            self.config,
            {self._keys.node_channel(self.node_id): "node", self._keys.all_channel: "all"},
            self._inbox_send,
            on_subscribed=self._subscribed,
            on_unsubscribed=lambda: self._health.subscription_changed(False),
            on_overflow=lambda: self._resyncer.request(OVERFLOW),
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._resyncer.run)
            await nursery.start(self._subscriber.run)
            nursery.start_soon(self._liveness.heartbeat_loop)
            nursery.start_soon(self._routes.refresh_loop)
            log.info("event=broker_started node=%s", self.node_id)
            started()

    def _subscribed(self, first: bool) -> None:
        self._health.subscription_changed(True)
        self._resyncer.request(SUBSCRIBED if first else RESUBSCRIBED)
        if not first:
            # Redis may have restarted and lost every route: put ours back now.
            self._routes.refresh_soon()

    async def _deregister(self) -> None:
        """Leave at once instead of waiting for the TTLs; failures are only logged.

        A client of its own, shielded: the running one was torn down with the
        cancellation that stops us.
        """
        routes = self._routes.take_all()
        self._health.stopped()
        with trio.CancelScope(shield=True):
            try:
                with trio.move_on_after(self.config.call_timeout) as scope:
                    async with self._new_client() as client:
                        await self._forget(client, routes)
            except Exception as exc:
                if not is_unavailability(exc):
                    raise
                log.warning("event=broker_deregister_failed error=%s", describe(exc))
                return
        if scope.cancelled_caught:
            log.warning("event=broker_deregister_failed error=timeout")
        else:
            log.info("event=broker_deregistered node=%s routes=%d", self.node_id, len(routes))

    async def _forget(self, client: Client, routes: list[tuple[tuple[str, str], int]]) -> None:
        scripts = Scripts(client)
        async with client.pipeline(transaction=False) as pipe:
            pipe.delete([self._keys.node(self.node_id), self._keys.online(self.node_id)])
            pipe.zrem(self._keys.nodes, [self.node_id])
            for (app, device), epoch in routes:
                scripts.release(
                    keys=[self._keys.device(app, device)],
                    args=[Route(self.node_id, epoch).encode()],
                    client=pipe,
                )

    # --- liveness (liveness.py) --------------------------------------------------

    async def heartbeat(self) -> None:
        """Write this node's liveness key, listing score and online counts now."""
        await self._liveness.heartbeat()

    async def live_nodes(self, app: str | None = None) -> list[LiveNode]:
        """Nodes whose liveness key exists, by ID; with `app`, its devices online on each."""
        return await self._liveness.live_nodes(app)

    # --- routes (route_table.py) ---------------------------------------------------

    async def claim_route(self, app: str, device: str, epoch: int) -> Claim:
        """Make this node the device's route at `epoch` (from the store), if newest."""
        return await self._routes.claim(app, device, epoch)

    async def release_route(self, app: str, device: str, epoch: int) -> bool:
        """Remove the route only if it still is ours at `epoch`; True if it was removed."""
        return await self._routes.release(app, device, epoch)

    async def forget_route(self, app: str, device: str, route: Route) -> bool:
        """Remove the device's route only if it still is `route`; True if it was removed."""
        return await self._routes.forget(app, device, route)

    async def refresh_routes(self) -> list[tuple[str, str, Route]]:
        """Re-claim every route this node holds; (app, device, newer route) of those lost."""
        return await self._routes.refresh()

    async def lookup_routes(self, app: str, devices: Iterable[str]) -> dict[str, Route | None]:
        """Each device's route (None: no live connection anywhere)."""
        return await self._routes.lookup(app, devices)

    # --- messages (fanout.py) ------------------------------------------------------

    async def publish(self, node_id: str, message: BrokerMessage) -> int:
        """Send a hint to one node; the answer is how many subscribers heard it (0 or 1)."""
        return await self._publisher.publish(node_id, message)

    async def publish_all(self, message: BrokerMessage) -> int:
        """Send a hint to every node (this one included); the answer is how many heard it."""
        return await self._publisher.publish_all(message)

    async def deliver(
        self, app: str, message_id: str, payload: bytes, devices: Iterable[str]
    ) -> FanOut:
        """Publish one `Deliver` per node holding some of the devices (fanout.py)."""
        return await self._publisher.deliver(app, message_id, payload, devices)

    async def deliver_many(self, items: Sequence[Delivery]) -> list[FanOut]:
        """`deliver` for a batch of messages, in two Redis round trips for all of them."""
        return await self._publisher.deliver_many(items)

    # --- rate limits ------------------------------------------------------------

    async def take_token(self, app: str, rate: float, burst: int) -> float:
        """Take one token from the app's bucket shared by all nodes.

        0.0 when allowed, else the seconds until a token is back (for
        `Retry-After`). A rate of 0 or less means no limit (no Redis call).
        """
        if rate <= 0:
            return 0.0
        key = self._keys.rate(app)
        args: list[str | int] = [repr(float(rate)), max(1, int(burst))]
        wait_ms: Any = await self._caller.call(
            "take_token", lambda c: self._caller.scripts.take_token(keys=[key], args=args)
        )
        return int(wait_ms) / 1000


if TYPE_CHECKING:

    def _implements_broker(broker: RedisBroker) -> Broker:
        return broker  # mypy checks RedisBroker against the Broker protocol here

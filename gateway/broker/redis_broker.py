"""The broker on Redis (coredis, which runs on Trio through anyio).

Keys and channels are in `keys.py`, the atomic checks in `scripts.py`. One
`run()` task per node owns the client and its background work: the liveness
heartbeat, the subscriber, the resync hook and the refresh of this node's
routes. Every call is bounded by `call_timeout` and fails only with
`BrokerUnavailable`; each outcome updates `health`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import coredis
import trio
from coredis.retry import ConstantRetryPolicy

from . import fanout
from .backoff import Backoff
from .base import Broker, BrokerStatistics
from .config import BrokerConfig, is_valid_node_id
from .errors import BrokerUnavailable, cancelled_part, describe, is_unavailability
from .fanout import Delivery
from .health import BrokerHealth
from .keys import Keys
from .messages import MAX_DEVICES_PER_MESSAGE, BrokerMessage, Inbound, Kick, encode
from .model import Claim, FanOut, LiveNode, NodeInfo, Route, check_epoch
from .resync import OVERFLOW, RESUBSCRIBED, SUBSCRIBED, Resyncer, ResyncHook
from .scripts import CLAIM_ROUTE, HEARTBEAT, RELEASE_ROUTE, TAKE_TOKEN
from .subscriber import Subscriber

log = logging.getLogger("pushgate.broker")

T = TypeVar("T")
Client = coredis.Redis[bytes]

MAX_NODES = 1000  # listed by live_nodes()
MAX_ONLINE_APPS = 10_000  # per-app online counts written with each heartbeat
_ENVELOPE_ROOM = 1024  # bytes of a Deliver besides its payload and device IDs


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
        self._online_counts = online_counts
        self._resyncer = Resyncer(
            on_resubscribed,
            Backoff(config.backoff_min, config.backoff_max),
            overflow_interval=config.overflow_resync_interval,
        )
        self._routes: dict[tuple[str, str], int] = {}  # (app, device) → epoch held here
        self._refresh_now = trio.Event()
        self._client: Client | None = None
        self._ran = False
        self._subscriber: Subscriber | None = None
        self._heartbeats = 0
        self._route_refreshes = 0

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
            heartbeats=self._heartbeats,
            route_refreshes=self._route_refreshes,
            local_routes=len(self._routes),
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
                    self._client = client
                    try:
                        await self._serve(client, mark_started)
                    finally:
                        self._client = None
            finally:
                if started:
                    await self._deregister()
        except BaseExceptionGroup as group:
            # coredis's pool is an anyio task group: errors come out wrapped.
            unavailable = _only_unavailable(group)
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
        self._scripts = _Scripts(client)
        await self._call("ping", lambda c: c.ping())
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
            nursery.start_soon(self._heartbeat_loop)
            nursery.start_soon(self._refresh_loop)
            log.info("event=broker_started node=%s", self.node_id)
            started()

    def _subscribed(self, first: bool) -> None:
        self._health.subscription_changed(True)
        self._resyncer.request(SUBSCRIBED if first else RESUBSCRIBED)
        if not first:
            # Redis may have restarted and lost every route: put ours back now.
            self._refresh_now.set()

    async def _deregister(self) -> None:
        """Leave at once instead of waiting for the TTLs; failures are only logged.

        A client of its own, shielded: the running one was torn down with the
        cancellation that stops us.
        """
        routes = list(self._routes.items())
        self._routes.clear()
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
        scripts = _Scripts(client)
        async with client.pipeline(transaction=False) as pipe:
            pipe.delete([self._keys.node(self.node_id), self._keys.online(self.node_id)])
            pipe.zrem(self._keys.nodes, [self.node_id])
            for (app, device), epoch in routes:
                scripts.release(
                    keys=[self._keys.device(app, device)],
                    args=[Route(self.node_id, epoch).encode()],
                    client=pipe,
                )

    # --- one bounded call --------------------------------------------------------

    async def _call(self, op: str, fn: Callable[[Client], Awaitable[T]]) -> T:
        client = self._client
        if client is None:
            raise BrokerUnavailable(f"{op}: the broker is not running")
        try:
            with trio.fail_after(self.config.call_timeout):
                result = await fn(client)
        except Exception as exc:
            if not is_unavailability(exc):
                raise
            reason = describe(exc)
            self._health.call_failed(op, reason)
            raise BrokerUnavailable(f"{op}: {reason}") from exc
        self._health.call_succeeded()
        return result

    # --- liveness ------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Write this node's liveness key, listing score and online counts now."""
        counts = dict(self._online_counts()) if self._online_counts else {}
        pairs: list[str | int] = []
        for app, count in list(counts.items())[:MAX_ONLINE_APPS]:
            pairs += [app, int(count)]
        keys = [
            self._keys.node(self.node_id),
            self._keys.nodes,
            self._keys.online(self.node_id),
        ]
        args = [self.node_id, self._info.to_json(), _ms(self.config.node_ttl), *pairs]
        await self._call("heartbeat", lambda c: self._scripts.heartbeat(keys=keys, args=args))
        self._heartbeats += 1

    async def _heartbeat_loop(self) -> None:
        while True:
            await trio.sleep(self.config.heartbeat_interval)
            try:
                await self.heartbeat()
            except BrokerUnavailable:
                pass  # health says so; the next beat retries

    async def live_nodes(self, app: str | None = None) -> list[LiveNode]:
        """Nodes whose liveness key exists, by ID; with `app`, its devices online on each.

        Members of the `nodes` set whose key expired (dead nodes) are trimmed.
        """
        scored: Any = await self._call(
            "live_nodes",
            lambda c: c.zrange(self._keys.nodes, 0, MAX_NODES - 1, withscores=True),
        )
        members = [(_text(member), int(score)) for member, score in scored]
        if not members:
            return []

        async def read(c: Client) -> tuple[list[Any], list[Any]]:
            async with c.pipeline(transaction=False) as pipe:
                infos = [pipe.get(self._keys.node(node)) for node, _ in members]
                counts = (
                    [pipe.hget(self._keys.online(node), app) for node, _ in members]
                    if app is not None
                    else []
                )
            return [await i for i in infos], [await n for n in counts]

        infos, counts = await self._call("live_nodes", read)
        live, dead = [], []
        for i, (node, seen) in enumerate(members):
            raw = infos[i]
            if raw is None:
                dead.append(node)
                continue
            try:
                info = NodeInfo.from_json(node, raw)
            except ValueError:
                log.warning("event=broker_bad_node_info node=%s", node)
                continue
            online = None if app is None else int(counts[i] or 0)
            live.append(LiveNode(info=info, last_seen_ms=seen, online=online))
        if dead:
            await self._call("live_nodes", lambda c: c.zrem(self._keys.nodes, dead))
        return sorted(live, key=lambda n: n.info.node_id)

    # --- routes ----------------------------------------------------------------

    async def claim_route(self, app: str, device: str, epoch: int) -> Claim:
        """Make this node the device's route at `epoch` (from the store), if newest.

        Won: the route is ours and this node refreshes it; `previous` (if any)
        is the connection to kick. Lost: a newer epoch holds the device and
        our connection is the one to close.
        """
        check_epoch(epoch)
        key = self._keys.device(app, device)
        args: list[str | int] = [self.node_id, epoch, _ms(self.config.route_ttl)]
        reply: Any = await self._call(
            "claim_route", lambda c: self._scripts.claim(keys=[key], args=args)
        )
        claim = self._claim_from(reply, epoch)
        self._note_claim(app, device, claim)
        return claim

    def _claim_from(self, reply: Any, epoch: int) -> Claim:
        won, other = int(reply[0]), Route.decode(reply[1]) if reply[1] else None
        mine = Route(self.node_id, epoch)
        if won:
            return Claim(won=True, previous=other, current=mine)
        assert other is not None  # the script only refuses for a parseable, newer route
        return Claim(won=False, previous=None, current=other)

    def _note_claim(self, app: str, device: str, claim: Claim) -> None:
        """Hold the newest route we won; forget ours once a newer one holds the device."""
        key = (app, device)
        held = self._routes.get(key)
        if claim.won:
            if held is None or held <= claim.current.epoch:
                self._routes[key] = claim.current.epoch
        elif (
            held is not None
            and held <= claim.current.epoch
            and Route(self.node_id, held) != claim.current
        ):
            del self._routes[key]

    async def release_route(self, app: str, device: str, epoch: int) -> bool:
        """Remove the route only if it still is ours at `epoch`; True if it was removed.

        This node stops refreshing it even if Redis cannot be reached (the
        route then expires by itself).
        """
        return await self.forget_route(app, device, Route(self.node_id, check_epoch(epoch)))

    async def forget_route(self, app: str, device: str, route: Route) -> bool:
        """Remove the device's route only if it still is `route`; True if it was removed.

        For a route of another node that heard nothing (dead): the next
        claim or that node's refresh writes a live one again.
        """
        if route.node_id == self.node_id and self._routes.get((app, device)) == route.epoch:
            del self._routes[(app, device)]
        key, value = self._keys.device(app, device), route.encode()
        removed: Any = await self._call(
            "release_route", lambda c: self._scripts.release(keys=[key], args=[value])
        )
        return bool(removed)

    async def refresh_routes(self) -> list[tuple[str, str, Route]]:
        """Re-claim every route this node holds (re-creating any Redis lost).

        Returns the (app, device, newer route) of those a newer epoch took:
        for each, a local `Kick` is put in the inbox so the node closes its
        stale connection. Routes that replaced an older one (Redis restarted
        and a stale holder wrote first) get that holder kicked.
        """
        lost: list[tuple[str, str, Route]] = []
        items = list(self._routes.items())
        for start in range(0, len(items), self.config.route_batch):
            lost += await self._refresh_batch(items[start : start + self.config.route_batch])
        self._route_refreshes += 1
        return lost

    async def _refresh_batch(
        self, batch: Sequence[tuple[tuple[str, str], int]]
    ) -> list[tuple[str, str, Route]]:
        ttl = _ms(self.config.route_ttl)

        async def claim_all(c: Client) -> list[Any]:
            async with c.pipeline(transaction=False) as pipe:
                replies: list[Any] = [
                    self._scripts.claim(
                        keys=[self._keys.device(app, device)],
                        args=[self.node_id, epoch, ttl],
                        client=pipe,
                    )
                    for (app, device), epoch in batch
                ]
            return [await r for r in replies]

        replies: list[Any] = await self._call("refresh_routes", claim_all)
        lost = []
        for ((app, device), epoch), reply in zip(batch, replies, strict=True):
            claim = self._claim_from(reply, epoch)
            if claim.won:
                if claim.previous is not None and claim.previous.node_id != self.node_id:
                    await self._kick_quietly(app, device, claim)
                continue
            kick = Kick(app=app, device=device, epoch=claim.current.epoch)
            try:
                self._inbox_send.send_nowait(
                    Inbound(origin=self.node_id, channel="local", message=kick)
                )
            except trio.WouldBlock:
                continue  # still held: the next refresh tries again
            self._note_claim(app, device, claim)
            lost.append((app, device, claim.current))
        return lost

    async def _kick_quietly(self, app: str, device: str, claim: Claim) -> None:
        assert claim.previous is not None
        kick = Kick(app=app, device=device, epoch=claim.current.epoch)
        try:
            await self.publish(claim.previous.node_id, kick)
        except BrokerUnavailable:
            pass  # its route is gone; its connection closes at its next refresh

    async def _refresh_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.route_refresh_interval):
                await self._refresh_now.wait()
            self._refresh_now = trio.Event()
            try:
                lost = await self.refresh_routes()
            except BrokerUnavailable:
                continue
            if lost:
                log.info("event=broker_routes_lost count=%d", len(lost))

    async def lookup_routes(self, app: str, devices: Iterable[str]) -> dict[str, Route | None]:
        """Each device's route (None: no live connection anywhere), by MGET in batches."""
        wanted = list(dict.fromkeys(devices))
        found: dict[str, Route | None] = {}
        for start in range(0, len(wanted), self.config.route_batch):
            chunk = wanted[start : start + self.config.route_batch]
            keys = [self._keys.device(app, d) for d in chunk]
            values = await self._call("lookup_routes", partial(_mget, keys=keys))
            for device, value in zip(chunk, values, strict=True):
                found[device] = None if value is None else Route.decode(value)
        return found

    # --- messages ----------------------------------------------------------------

    def _encode(self, message: BrokerMessage) -> bytes:
        data = encode(message, origin=self.node_id)
        if len(data) > self.config.max_message_bytes:
            raise ValueError(
                f"{message.T} message of {len(data)} bytes exceeds {self.config.max_message_bytes}"
            )
        return data

    async def publish(self, node_id: str, message: BrokerMessage) -> int:
        """Send a hint to one node; the answer is how many subscribers heard it (0 or 1)."""
        channel, data = self._keys.node_channel(node_id), self._encode(message)
        return await self._call("publish", lambda c: c.publish(channel, data))

    async def publish_all(self, message: BrokerMessage) -> int:
        """Send a hint to every node (this one included); the answer is how many heard it."""
        data = self._encode(message)
        return await self._call("publish", lambda c: c.publish(self._keys.all_channel, data))

    async def deliver(
        self, app: str, message_id: str, payload: bytes, devices: Iterable[str]
    ) -> FanOut:
        """Look up the devices' routes and publish one `Deliver` per node (in chunks).

        Devices routed here come back in `local`; those whose node heard
        nothing (dead, or its subscription down) in `unheard`. Either way
        the delivery stays in the store for the next `welcome` or sweep.
        """
        return (await self.deliver_many([(app, message_id, payload, list(devices))]))[0]

    async def deliver_many(self, items: Sequence[Delivery]) -> list[FanOut]:
        """`deliver` for a batch of messages, in two round trips for the whole batch."""
        found = fanout.lookup(self._keys, items)
        values: list[bytes | None] = []
        if found.keys:
            lookup = partial(fanout.mget_many, keys=found.keys, chunk=self.config.route_batch)
            values = await self._call("lookup_routes", lookup)
        plan = fanout.plan(items, found, values, self.node_id, self._encode, self._chunks)
        if plan.batches:
            channels = [(self._keys.node_channel(n), data) for _, n, _, data in plan.batches]
            heard = await self._call("deliver", partial(fanout.publish_many, messages=channels))
            fanout.record(plan.fans, plan, heard)
        return plan.fans

    def _chunks(self, devices: list[str], payload_size: int) -> Iterable[list[str]]:
        room = self.config.max_message_bytes - _ENVELOPE_ROOM - payload_size
        chunk: list[str] = []
        size = 0
        for device in devices:
            cost = len(device.encode()) + 3
            if cost > room:
                raise ValueError("payload too large for a broker message")
            if chunk and (size + cost > room or len(chunk) == MAX_DEVICES_PER_MESSAGE):
                yield chunk
                chunk, size = [], 0
            chunk.append(device)
            size += cost
        if chunk:
            yield chunk

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
        wait_ms: Any = await self._call(
            "take_token", lambda c: self._scripts.take_token(keys=[key], args=args)
        )
        return int(wait_ms) / 1000


class _Scripts:
    """The Lua scripts, registered on the client (EVALSHA, loaded again after a restart)."""

    def __init__(self, client: Client) -> None:
        self.claim = client.register_script(CLAIM_ROUTE)
        self.release = client.register_script(RELEASE_ROUTE)
        self.heartbeat = client.register_script(HEARTBEAT)
        self.take_token = client.register_script(TAKE_TOKEN)


async def _mget(client: Client, *, keys: list[str]) -> tuple[bytes | None, ...]:
    return await client.mget(keys)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _only_unavailable(group: BaseExceptionGroup[Any]) -> BrokerUnavailable | None:
    """The BrokerUnavailable inside a group that holds nothing else, or None."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if leaves and all(isinstance(e, BrokerUnavailable) for e in leaves):
        return leaves[0]  # type: ignore[return-value]
    return None


if TYPE_CHECKING:

    def _implements_broker(broker: RedisBroker) -> Broker:
        return broker  # mypy checks RedisBroker against the Broker protocol here

"""A node's liveness in Redis: its key with a TTL, its listing score and online counts
(the heartbeat), and the listing of the live nodes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import trio

from .calls import Caller, Client, ms, text
from .config import BrokerConfig
from .errors import BrokerUnavailable
from .keys import Keys
from .model import LiveNode, NodeInfo

log = logging.getLogger("pushgate.broker")

MAX_NODES = 1000  # listed by live_nodes()
MAX_ONLINE_APPS = 10_000  # per-app online counts written with each heartbeat


class Liveness:
    def __init__(
        self,
        config: BrokerConfig,
        keys: Keys,
        caller: Caller,
        info: Callable[[], NodeInfo],
        online_counts: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self.config = config
        self._keys = keys
        self._caller = caller
        self._info = info
        self._online_counts = online_counts
        self.heartbeats = 0

    async def heartbeat(self) -> None:
        """Write this node's liveness key, listing score and online counts now."""
        info = self._info()
        counts = dict(self._online_counts()) if self._online_counts else {}
        pairs: list[str | int] = []
        for app, count in list(counts.items())[:MAX_ONLINE_APPS]:
            pairs += [app, int(count)]
        keys = [
            self._keys.node(info.node_id),
            self._keys.nodes,
            self._keys.online(info.node_id),
        ]
        args = [info.node_id, info.to_json(), ms(self.config.node_ttl), *pairs]
        await self._caller.call(
            "heartbeat", lambda c: self._caller.scripts.heartbeat(keys=keys, args=args)
        )
        self.heartbeats += 1

    async def heartbeat_loop(self) -> None:
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
        call = self._caller.call
        scored: Any = await call(
            "live_nodes",
            lambda c: c.zrange(self._keys.nodes, 0, MAX_NODES - 1, withscores=True),
        )
        members = [(text(member), int(score)) for member, score in scored]
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

        infos, counts = await call("live_nodes", read)
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
            await call("live_nodes", lambda c: c.zrem(self._keys.nodes, dead))
        return sorted(live, key=lambda n: n.info.node_id)

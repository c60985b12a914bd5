"""The routes of one node: claimed and released by compare-and-set on the fencing
epoch, refreshed (re-claimed) while held, looked up for a fan-out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any

import trio

from .calls import Caller, Client, ms
from .config import BrokerConfig
from .errors import BrokerUnavailable
from .keys import Keys
from .messages import BrokerMessage, Inbound, Kick
from .model import Claim, Route, check_epoch

log = logging.getLogger("pushgate.broker")

Publish = Callable[[str, BrokerMessage], Awaitable[int]]


class RouteTable:
    def __init__(
        self,
        config: BrokerConfig,
        keys: Keys,
        node_id: str,
        caller: Caller,
        inbox: trio.MemorySendChannel[Inbound],
        publish: Publish,
    ) -> None:
        self.config = config
        self.node_id = node_id
        self._keys = keys
        self._caller = caller
        self._inbox = inbox
        self._publish = publish
        self.held: dict[tuple[str, str], int] = {}  # (app, device) → epoch held here
        self.refreshes = 0
        self._refresh_now = trio.Event()

    def refresh_soon(self) -> None:
        """Refresh now rather than at the next interval (Redis may have lost them)."""
        self._refresh_now.set()

    def take_all(self) -> list[tuple[tuple[str, str], int]]:
        """Every route held here, forgotten (the node stops)."""
        routes = list(self.held.items())
        self.held.clear()
        return routes

    async def claim(self, app: str, device: str, epoch: int) -> Claim:
        """Make this node the device's route at `epoch` (from the store), if newest.

        Won: the route is ours and this node refreshes it; `previous` (if any)
        is the connection to kick. Lost: a newer epoch holds the device and
        our connection is the one to close.
        """
        check_epoch(epoch)
        key = self._keys.device(app, device)
        args: list[str | int] = [self.node_id, epoch, ms(self.config.route_ttl)]
        reply: Any = await self._caller.call(
            "claim_route", lambda c: self._caller.scripts.claim(keys=[key], args=args)
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
        held = self.held.get(key)
        if claim.won:
            if held is None or held <= claim.current.epoch:
                self.held[key] = claim.current.epoch
        elif (
            held is not None
            and held <= claim.current.epoch
            and Route(self.node_id, held) != claim.current
        ):
            del self.held[key]

    async def release(self, app: str, device: str, epoch: int) -> bool:
        """Remove the route only if it still is ours at `epoch`; True if it was removed.

        This node stops refreshing it even if Redis cannot be reached (the
        route then expires by itself).
        """
        return await self.forget(app, device, Route(self.node_id, check_epoch(epoch)))

    async def forget(self, app: str, device: str, route: Route) -> bool:
        """Remove the device's route only if it still is `route`; True if it was removed.

        For a route of another node that heard nothing (dead): the next
        claim or that node's refresh writes a live one again.
        """
        if route.node_id == self.node_id and self.held.get((app, device)) == route.epoch:
            del self.held[(app, device)]
        key, value = self._keys.device(app, device), route.encode()
        removed: Any = await self._caller.call(
            "release_route", lambda c: self._caller.scripts.release(keys=[key], args=[value])
        )
        return bool(removed)

    async def refresh(self) -> list[tuple[str, str, Route]]:
        """Re-claim every route this node holds (re-creating any Redis lost).

        Returns the (app, device, newer route) of those a newer epoch took:
        for each, a local `Kick` is put in the inbox so the node closes its
        stale connection. Routes that replaced an older one (Redis restarted
        and a stale holder wrote first) get that holder kicked.
        """
        lost: list[tuple[str, str, Route]] = []
        items = list(self.held.items())
        for start in range(0, len(items), self.config.route_batch):
            lost += await self._refresh_batch(items[start : start + self.config.route_batch])
        self.refreshes += 1
        return lost

    async def _refresh_batch(
        self, batch: Sequence[tuple[tuple[str, str], int]]
    ) -> list[tuple[str, str, Route]]:
        ttl = ms(self.config.route_ttl)

        async def claim_all(c: Client) -> list[Any]:
            scripts = self._caller.scripts
            async with c.pipeline(transaction=False) as pipe:
                replies: list[Any] = [
                    scripts.claim(
                        keys=[self._keys.device(app, device)],
                        args=[self.node_id, epoch, ttl],
                        client=pipe,
                    )
                    for (app, device), epoch in batch
                ]
            return [await r for r in replies]

        replies: list[Any] = await self._caller.call("refresh_routes", claim_all)
        lost = []
        for ((app, device), epoch), reply in zip(batch, replies, strict=True):
            claim = self._claim_from(reply, epoch)
            if claim.won:
                if claim.previous is not None and claim.previous.node_id != self.node_id:
                    await self._kick_quietly(app, device, claim)
                continue
            kick = Kick(app=app, device=device, epoch=claim.current.epoch)
            try:
                self._inbox.send_nowait(Inbound(origin=self.node_id, channel="local", message=kick))
            except trio.WouldBlock:
                continue  # still held: the next refresh tries again
            self._note_claim(app, device, claim)
            lost.append((app, device, claim.current))
        return lost

    async def _kick_quietly(self, app: str, device: str, claim: Claim) -> None:
        assert claim.previous is not None
        kick = Kick(app=app, device=device, epoch=claim.current.epoch)
        try:
            await self._publish(claim.previous.node_id, kick)
        except BrokerUnavailable:
            pass  # its route is gone; its connection closes at its next refresh

    async def refresh_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.route_refresh_interval):
                await self._refresh_now.wait()
            self._refresh_now = trio.Event()
            try:
                lost = await self.refresh()
            except BrokerUnavailable:
                continue
            if lost:
                log.info("event=broker_routes_lost count=%d", len(lost))

    async def lookup(self, app: str, devices: Iterable[str]) -> dict[str, Route | None]:
        """Each device's route (None: no live connection anywhere), by MGET in batches."""
        wanted = list(dict.fromkeys(devices))
        found: dict[str, Route | None] = {}
        for start in range(0, len(wanted), self.config.route_batch):
            chunk = wanted[start : start + self.config.route_batch]
            keys = [self._keys.device(app, d) for d in chunk]
            values = await self._caller.call("lookup_routes", partial(_mget, keys=keys))
            for device, value in zip(chunk, values, strict=True):
                found[device] = None if value is None else Route.decode(value)
        return found


async def _mget(client: Client, *, keys: list[str]) -> tuple[bytes | None, ...]:
    return await client.mget(keys)

"""Hints out: a message to one node or to all, and a push fanned out to the nodes
holding its devices (one `Deliver` per node, in chunks under `max_message_bytes`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from .calls import Caller, Client
from .config import BrokerConfig
from .keys import Keys
from .messages import MAX_DEVICES_PER_MESSAGE, BrokerMessage, Deliver, encode
from .model import FanOut, Route

_ENVELOPE_ROOM = 1024  # bytes of a Deliver besides its payload and device IDs

Lookup = Callable[[str, Iterable[str]], Awaitable[dict[str, Route | None]]]


class Publisher:
    def __init__(
        self, config: BrokerConfig, keys: Keys, node_id: str, caller: Caller, lookup: Lookup
    ) -> None:
        self.config = config
        self.node_id = node_id
        self._keys = keys
        self._caller = caller
        self._lookup = lookup

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
        return await self._caller.call("publish", lambda c: c.publish(channel, data))

    async def publish_all(self, message: BrokerMessage) -> int:
        """Send a hint to every node (this one included); the answer is how many heard it."""
        data = self._encode(message)
        channel = self._keys.all_channel
        return await self._caller.call("publish", lambda c: c.publish(channel, data))

    async def deliver(
        self, app: str, message_id: str, payload: bytes, devices: Iterable[str]
    ) -> FanOut:
        """Look up the devices' routes and publish one `Deliver` per node (in chunks).

        Devices routed here come back in `local`; those whose node heard
        nothing (dead, or its subscription down) in `unheard`. Either way
        the delivery stays in the store for the next `welcome` or sweep.
        """
        routes = await self._lookup(app, devices)
        fan = FanOut()
        by_node: dict[str, list[str]] = {}
        for device, route in routes.items():
            if route is None:
                fan.unrouted.append(device)
            elif route.node_id == self.node_id:
                fan.local.append(device)
            else:
                by_node.setdefault(route.node_id, []).append(device)
        batches = [
            (
                node,
                chunk,
                self._encode(
                    Deliver(app=app, message_id=message_id, payload=payload, devices=tuple(chunk))
                ),
            )
            for node, node_devices in sorted(by_node.items())
            for chunk in self._chunks(node_devices, len(payload))
        ]
        if not batches:
            return fan

        async def publish_all(c: Client) -> list[int]:
            async with c.pipeline(transaction=False) as pipe:
                counts = [pipe.publish(self._keys.node_channel(n), d) for n, _, d in batches]
            return [await n for n in counts]

        heard = await self._caller.call("deliver", publish_all)
        for (node, chunk, _), count in zip(batches, heard, strict=True):
            (fan.sent if count else fan.unheard).setdefault(node, []).extend(chunk)
        return fan

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

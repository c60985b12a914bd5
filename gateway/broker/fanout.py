"""Hints out: a message to one node or to all, and pushes fanned out to the nodes
holding their devices (one `Deliver` per message and node, in chunks under
`max_message_bytes`).

Per batch of pushes, not per push: one round trip of MGETs (pipelined, in
chunks) looks up the route of every device of every message, and one pipelined
round trip publishes every `Deliver`. A node pushing thousands of messages a
second otherwise paid two Redis round trips per message, which cost more of
its event loop than storing and sending the message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from .calls import Caller, Client
from .config import BrokerConfig
from .keys import Keys
from .messages import MAX_DEVICES_PER_MESSAGE, BrokerMessage, Deliver, encode
from .model import FanOut, Route

_ENVELOPE_ROOM = 1024  # bytes of a Deliver besides its payload and device IDs

Delivery = tuple[str, str, bytes, Sequence[str]]  # app, message ID, payload, devices


class Publisher:
    def __init__(self, config: BrokerConfig, keys: Keys, node_id: str, caller: Caller) -> None:
        self.config = config
        self.node_id = node_id
        self._keys = keys
        self._caller = caller

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
        return (await self.deliver_many([(app, message_id, payload, list(devices))]))[0]

    async def deliver_many(self, items: Sequence[Delivery]) -> list[FanOut]:
        """`deliver` for a batch of messages, in two round trips for the whole batch."""
        found = _route_keys(self._keys, items)
        values: list[bytes | None] = []
        if found.keys:
            lookup = partial(_mget_many, keys=found.keys, chunk=self.config.route_batch)
            values = await self._caller.call("lookup_routes", lookup)
        plan = self._plan(items, found, values)
        if plan.batches:
            channels = [(self._keys.node_channel(n), data) for _, n, _, data in plan.batches]
            heard = await self._caller.call("deliver", partial(_publish_many, messages=channels))
            for (k, node, chunk, _), count in zip(plan.batches, heard, strict=True):
                fans = plan.fans[k].sent if count else plan.fans[k].unheard
                fans.setdefault(node, []).extend(chunk)
        return plan.fans

    def _plan(
        self, items: Sequence[Delivery], found: _RouteKeys, values: Sequence[bytes | None]
    ) -> _Plan:
        fans = [FanOut() for _ in items]
        remote: list[dict[str, list[str]]] = [{} for _ in items]
        for (k, device), value in zip(found.owners, values, strict=True):
            route = None if value is None else Route.decode(value)
            if route is None:
                fans[k].unrouted.append(device)
            elif route.node_id == self.node_id:
                fans[k].local.append(device)
            else:
                remote[k].setdefault(route.node_id, []).append(device)
        batches = []
        for k, (app, message_id, payload, _) in enumerate(items):
            for node, node_devices in sorted(remote[k].items()):
                for chunk in self._chunks(node_devices, len(payload)):
                    deliver = Deliver(
                        app=app, message_id=message_id, payload=payload, devices=tuple(chunk)
                    )
                    batches.append((k, node, chunk, self._encode(deliver)))
        return _Plan(fans, batches)

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


@dataclass(slots=True)
class _RouteKeys:
    """The route keys of a batch, and which delivery and device each key is for."""

    keys: list[str] = field(default_factory=list)
    owners: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
    """Per delivery its FanOut (local and unrouted devices filled in), and the
    `Deliver` messages to publish: (delivery, node, devices, bytes)."""

    fans: list[FanOut]
    batches: list[tuple[int, str, list[str], bytes]]


def _route_keys(keys: Keys, items: Sequence[Delivery]) -> _RouteKeys:
    out = _RouteKeys()
    for k, (app, _, _, devices) in enumerate(items):
        for device in dict.fromkeys(devices):
            out.keys.append(keys.device(app, device))
            out.owners.append((k, device))
    return out


async def _mget_many(client: Client, *, keys: list[str], chunk: int) -> list[bytes | None]:
    """MGET of `keys`, `chunk` keys per command, in one round trip."""
    if len(keys) <= chunk:
        return list(await client.mget(keys))
    async with client.pipeline(transaction=False) as pipe:
        parts = [pipe.mget(keys[i : i + chunk]) for i in range(0, len(keys), chunk)]
    out: list[bytes | None] = []
    for part in parts:
        out.extend(await part)
    return out


async def _publish_many(client: Client, *, messages: list[tuple[str, bytes]]) -> list[int]:
    """PUBLISH each (channel, data) in one round trip; how many subscribers heard each."""
    async with client.pipeline(transaction=False) as pipe:
        counts = [pipe.publish(channel, data) for channel, data in messages]
    return [await n for n in counts]

"""A batch of stored messages fanned out to the nodes their devices are connected to.

Per batch, not per message: one round trip of MGETs (pipelined, in chunks)
looks up the route of every device of every message, and one pipelined round
trip publishes a `Deliver` per message and node. A node pushing thousands of
messages a second otherwise paid two Redis round trips per message, which
cost more of its event loop than storing and sending the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from coredis import Redis

from .keys import Keys
from .messages import BrokerMessage, Deliver
from .model import FanOut, Route

Client = Redis[bytes]
Delivery = tuple[str, str, bytes, Sequence[str]]  # app, message ID, payload, devices


@dataclass(slots=True)
class Lookup:
    """The route keys of a batch, and which delivery and device each key is for."""

    keys: list[str] = field(default_factory=list)
    owners: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """Where each delivery goes: per delivery its FanOut (local and unrouted devices
    filled in), and the `Deliver` messages to publish: (delivery, node, devices, bytes)."""

    fans: list[FanOut]
    batches: list[tuple[int, str, list[str], bytes]]


def lookup(keys: Keys, items: Sequence[Delivery]) -> Lookup:
    out = Lookup()
    for k, (app, _, _, devices) in enumerate(items):
        for device in dict.fromkeys(devices):
            out.keys.append(keys.device(app, device))
            out.owners.append((k, device))
    return out


def plan(
    items: Sequence[Delivery],
    found: Lookup,
    values: Sequence[bytes | None],
    node_id: str,
    encode: Callable[[BrokerMessage], bytes],
    chunks: Callable[[list[str], int], Iterable[list[str]]],
) -> Plan:
    fans = [FanOut() for _ in items]
    remote: list[dict[str, list[str]]] = [{} for _ in items]
    for (k, device), value in zip(found.owners, values, strict=True):
        route = None if value is None else Route.decode(value)
        if route is None:
            fans[k].unrouted.append(device)
        elif route.node_id == node_id:
            fans[k].local.append(device)
        else:
            remote[k].setdefault(route.node_id, []).append(device)
    batches = [
        (
            k,
            node,
            chunk,
            encode(Deliver(app=app, message_id=mid, payload=payload, devices=tuple(chunk))),
        )
        for k, (app, mid, payload, _) in enumerate(items)
        for node, node_devices in sorted(remote[k].items())
        for chunk in chunks(node_devices, len(payload))
    ]
    return Plan(fans, batches)


def record(fans: list[FanOut], batches: Plan, heard: Sequence[int]) -> None:
    """Per published `Deliver`: its devices were sent (a subscriber heard) or unheard."""
    for (k, node, chunk, _), count in zip(batches.batches, heard, strict=True):
        (fans[k].sent if count else fans[k].unheard).setdefault(node, []).extend(chunk)


async def mget_many(client: Client, *, keys: list[str], chunk: int) -> list[bytes | None]:
    """MGET of `keys`, `chunk` keys per command, in one round trip."""
    if len(keys) <= chunk:
        return list(await client.mget(keys))
    async with client.pipeline(transaction=False) as pipe:
        parts = [pipe.mget(keys[i : i + chunk]) for i in range(0, len(keys), chunk)]
    out: list[bytes | None] = []
    for part in parts:
        out.extend(await part)
    return out


async def publish_many(client: Client, *, messages: list[tuple[str, bytes]]) -> list[int]:
    """PUBLISH each (channel, data) in one round trip; how many subscribers heard each."""
    async with client.pipeline(transaction=False) as pipe:
        counts = [pipe.publish(channel, data) for channel, data in messages]
    return [await n for n in counts]

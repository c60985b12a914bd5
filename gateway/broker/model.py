"""Values the broker hands out: nodes, routes and the outcome of claims and fan-outs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_EPOCH = 2**53 - 1  # Lua compares epochs as doubles: exact up to here


def check_epoch(epoch: int) -> int:
    """The epoch, if Redis can compare it exactly; else ValueError."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch must be an integer 0..{MAX_EPOCH}")
    return epoch


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """What a node says about itself in its liveness key (JSON)."""

    node_id: str
    host: str
    ports: Mapping[str, int] = field(default_factory=dict)  # e.g. {"api": 8080, "ws": 8081}
    pid: int
    started_ms: int  # wall clock, Unix milliseconds

    def to_json(self) -> str:
        return json.dumps(
            {
                "host": self.host,
                "ports": dict(self.ports),
                "pid": self.pid,
                "started": self.started_ms,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, node_id: str, text: str | bytes) -> NodeInfo:
        """Raises ValueError for anything that is not a node info object."""
        data: Any = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("node info is not an object")
        host, ports, pid, started = (data.get(k) for k in ("host", "ports", "pid", "started"))
        if not isinstance(host, str) or not isinstance(pid, int) or not isinstance(started, int):
            raise ValueError("node info lacks host, pid or started")
        if not isinstance(ports, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in ports.items()
        ):
            raise ValueError("node info ports must map names to numbers")
        return cls(node_id=node_id, host=host, ports=ports, pid=pid, started_ms=started)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveNode:
    """A node whose liveness key exists, as listed by `live_nodes()`."""

    info: NodeInfo
    last_seen_ms: int  # Redis time of its last heartbeat
    online: int | None  # devices of the asked app online there (None: no app asked)


@dataclass(frozen=True, slots=True)
class Route:
    """Who holds a device's live connection: a node, at a fencing epoch."""

    node_id: str
    epoch: int

    def encode(self) -> str:
        return f"{self.node_id}:{self.epoch}"

    @classmethod
    def decode(cls, value: str | bytes) -> Route | None:
        """The route in a `dev:` value, or None if the value is not one."""
        text = value.decode() if isinstance(value, bytes) else value
        node_id, sep, epoch = text.rpartition(":")
        if not sep or not node_id or not epoch.isdigit():
            return None
        return cls(node_id, int(epoch))


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """The outcome of `claim_route`.

    `won`: the route is now ours (it was free, older, or already ours).
    `previous`: the route it replaced (another node or an older epoch of ours):
    that connection must be kicked. When not won, `current` is the newer route
    that keeps the device: our own connection is the stale one.
    """

    won: bool
    previous: Route | None
    current: Route


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOut:
    """Where `deliver()` sent a message, per device (each device in exactly one list)."""

    sent: dict[str, list[str]] = field(default_factory=dict)  # node → devices; it listened
    unheard: dict[str, list[str]] = field(default_factory=dict)  # node → devices; nobody listened
    unrouted: list[str] = field(default_factory=list)  # no route: the device is offline
    local: list[str] = field(default_factory=list)  # the route names this node

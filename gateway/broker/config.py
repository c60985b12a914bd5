"""Settings of the Redis broker, validated once so a bad value fails at start."""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "pushgate:"
URL_SCHEMES = ("redis", "rediss", "unix")

_NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PREFIX = re.compile(r"[A-Za-z0-9._:{}-]{1,64}")


def is_valid_node_id(value: object) -> bool:
    """1–64 of `A-Z a-z 0-9 . _ -`: no `:`, which separates it from the epoch in a route."""
    return isinstance(value, str) and _NODE_ID.fullmatch(value) is not None


def new_node_id() -> str:
    """`{host}-{pid}-{random}`: unique per process, readable in logs and `GET /v1/nodes`."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:32] or "node"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerConfig:
    """Where Redis is and how this node talks to it; every time is in seconds."""

    url: str = DEFAULT_URL
    prefix: str = DEFAULT_PREFIX  # of every key and channel: one per deployment (and test)
    call_timeout: float = 2.0  # each Redis call, connecting included
    node_ttl: float = 6.0  # a node whose liveness key is this old is dead
    heartbeat_interval: float = 2.0
    route_ttl: float = 90.0  # a route its node stopped refreshing disappears after this
    route_refresh_interval: float = 30.0
    route_batch: int = 500  # keys per MGET and commands per pipeline
    inbox_size: int = 1024  # pub/sub messages waiting for the node; past it they are dropped
    max_message_bytes: int = 256 * 1024  # a bigger pub/sub message is refused or ignored
    overflow_resync_interval: float = 1.0  # at most one resync this often for dropped hints
    subscriber_keepalive: float = 5.0  # PING an idle subscription this often: finds a hung Redis
    backoff_min: float = 0.1  # first wait before reconnecting the subscriber
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in URL_SCHEMES:
            raise ValueError(
                f"broker URL must start with redis://, rediss:// or unix:// (got {scheme!r})"
            )
        if _PREFIX.fullmatch(self.prefix) is None:
            raise ValueError("broker prefix: 1-64 of A-Z a-z 0-9 . _ : { } -")
        for name in (
            "call_timeout",
            "node_ttl",
            "heartbeat_interval",
            "route_ttl",
            "route_refresh_interval",
            "subscriber_keepalive",
            "overflow_resync_interval",
            "backoff_min",
            "backoff_max",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"broker {name} must be > 0")
        if self.heartbeat_interval * 2 > self.node_ttl:
            raise ValueError("broker node_ttl must be at least twice heartbeat_interval")
        if self.route_refresh_interval * 2 > self.route_ttl:
            raise ValueError("broker route_ttl must be at least twice route_refresh_interval")
        if self.backoff_min > self.backoff_max:
            raise ValueError("broker backoff_min must not exceed backoff_max")
        if not 1 <= self.route_batch <= 10_000:
            raise ValueError("broker route_batch must be 1..10000")
        if not 1 <= self.inbox_size <= 1_000_000:
            raise ValueError("broker inbox_size must be 1..1000000")
        if not 1024 <= self.max_message_bytes <= 64 * 1024 * 1024:
            raise ValueError("broker max_message_bytes must be 1 KiB..64 MiB")

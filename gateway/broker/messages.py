"""Pub/sub messages between nodes: small MessagePack maps with a type `t` and an origin `o`.

Every message is a hint: Redis pub/sub is at-most-once, so a receiver must
never be the only place a state change lives (the store is). Each type is a
frozen dataclass; `encode()` gives the bytes to publish, `decode()` validates
received bytes and raises `MessageError` for anything off-format.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack

from protocol.frames import MAX_ID_LENGTH, is_valid_id

from .config import is_valid_node_id
from .model import MAX_EPOCH

MAX_DEVICES_PER_MESSAGE = 1000


class MessageError(ValueError):
    """Received bytes are not a broker message (bad MessagePack, type or field)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """Send a stored message to these devices, connected to the receiving node.

    `payload` is opaque to the broker (the node's encoded `push` frame), so the
    receiver need not read the store.
    """

    T: ClassVar[str] = "deliver"
    app: str
    message_id: str
    payload: bytes
    devices: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Kick:
    """Close the device's connection with `bye replaced` if its epoch is older than `epoch`."""

    T: ClassVar[str] = "kick"
    app: str
    device: str
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    """Drop the message from every outbox: its undelivered deliveries are never sent."""

    T: ClassVar[str] = "revoke"
    app: str
    message_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind:
    """The device was bound to `user` (server side): its session now belongs to that user."""

    T: ClassVar[str] = "bind"
    app: str
    device: str
    user: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind:
    """The device was unbound from its user (server side)."""

    T: ClassVar[str] = "unbind"
    app: str
    device: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Broadcast:
    """Send a stored broadcast to the node's devices of the app (of `platform`, if given)."""

    T: ClassVar[str] = "broadcast"
    app: str
    message_id: str
    payload: bytes
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The app's settings changed (created, key rotated, limits): drop cached copies."""

    T: ClassVar[str] = "config"
    app: str


BrokerMessage = Deliver | Kick | Revoke | Bind | Unbind | Broadcast | Config


@dataclass(frozen=True, slots=True, kw_only=True)
class Inbound:
    """A received message and the node that published it."""

    origin: str
    channel: str  # "node" (this node's channel) or "all"
    message: BrokerMessage


def encode(message: BrokerMessage, *, origin: str) -> bytes:
    body: dict[str, Any] = {"t": message.T, "o": origin}
    for name in message.__dataclass_fields__:
        value = getattr(message, name)
        if value is not None:
            body[name] = list(value) if isinstance(value, tuple) else value
    data: bytes = msgpack.packb(body, use_bin_type=True)
    return data


def decode(data: bytes, *, max_size: int) -> tuple[str, BrokerMessage]:
    """(origin, message) from published bytes; `MessageError` for anything else."""
    if len(data) > max_size:
        raise MessageError(f"message of {len(data)} bytes exceeds {max_size}")
    try:
        obj = msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=MAX_DEVICES_PER_MESSAGE,
            max_map_len=16,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise MessageError(f"malformed MessagePack: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise MessageError("message is not a map")
    origin = obj.get("o")
    if not is_valid_node_id(origin):
        raise MessageError("field 'o' must be a node ID")
    build = _BUILDERS.get(obj.get("t"))  # type: ignore[arg-type]
    if build is None:
        raise MessageError("unknown message type")
    return str(origin), build(obj)


def _id(m: Mapping[str, Any], name: str) -> str:
    value = m.get(name)
    if not is_valid_id(value):
        raise MessageError(f"field {name!r} must be an ID of 1-{MAX_ID_LENGTH} characters")
    return str(value)


def _optional_id(m: Mapping[str, Any], name: str) -> str | None:
    return None if m.get(name) is None else _id(m, name)


def _devices(m: Mapping[str, Any]) -> tuple[str, ...]:
    value = m.get("devices")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_DEVICES_PER_MESSAGE:
        raise MessageError(f"field 'devices' must list 1-{MAX_DEVICES_PER_MESSAGE} IDs")
    if not all(is_valid_id(v) for v in value):
        raise MessageError("field 'devices' must hold IDs")
    return tuple(value)


def _payload(m: Mapping[str, Any]) -> bytes:
    value = m.get("payload")
    if not isinstance(value, bytes) or not value:
        raise MessageError("field 'payload' must be non-empty bytes")
    return value


def _epoch(m: Mapping[str, Any]) -> int:
    value = m.get("epoch")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCH:
        raise MessageError("field 'epoch' must be a non-negative integer")
    return value


_BUILDERS: dict[str, Callable[[Mapping[str, Any]], BrokerMessage]] = {
    Deliver.T: lambda m: Deliver(
        app=_id(m, "app"),
        message_id=_id(m, "message_id"),
        payload=_payload(m),
        devices=_devices(m),
    ),
    Kick.T: lambda m: Kick(app=_id(m, "app"), device=_id(m, "device"), epoch=_epoch(m)),
    Revoke.T: lambda m: Revoke(app=_id(m, "app"), message_id=_id(m, "message_id")),
    Bind.T: lambda m: Bind(app=_id(m, "app"), device=_id(m, "device"), user=_id(m, "user")),
    Unbind.T: lambda m: Unbind(app=_id(m, "app"), device=_id(m, "device")),
    Broadcast.T: lambda m: Broadcast(
        app=_id(m, "app"),
        message_id=_id(m, "message_id"),
        payload=_payload(m),
        platform=_optional_id(m, "platform"),
    ),
    Config.T: lambda m: Config(app=_id(m, "app")),
}

"""Frame types of the device protocol (CONTRACT.md section 3).

Each frame is a frozen, slotted, keyword-only dataclass. `to_map()` gives the
MessagePack map (with its `t` key); `frame_from_map()` validates a decoded map
and builds the frame, raising `ProtocolError` for anything off-contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .closing import ErrorCode
from .errors import ProtocolError

PROTOCOL_VERSION = 1
PLATFORMS = ("android", "ios")
MAX_ID_LENGTH = 128
MAX_ACK_IDS = 10_000


def is_valid_id(value: object) -> bool:
    """IDs are 1–128 characters with no whitespace or control characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        return False
    return all(ch.isprintable() and not ch.isspace() for ch in value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    T: ClassVar[str] = "hello"
    v: int
    app: str
    device: str
    platform: str
    token: str
    # Optional (CONTRACT §6): the device's vendor registration, both or neither.
    vendor: str | None = None
    vendor_token: str | None = None

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t": self.T,
            "v": self.v,
            "app": self.app,
            "device": self.device,
            "platform": self.platform,
            "token": self.token,
        }
        if self.vendor is not None:
            out["vendor"] = self.vendor
        if self.vendor_token is not None:
            out["vendor_token"] = self.vendor_token
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    T: ClassVar[str] = "ack"
    ids: tuple[str, ...]

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "ids": list(self.ids)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bind:
    T: ClassVar[str] = "bind"
    user: str
    sig: str

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "user": self.user, "sig": self.sig}


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind:
    T: ClassVar[str] = "unbind"

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    T: ClassVar[str] = "ping"

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True, kw_only=True)
class Vendor:
    """The device's vendor registration, at any time after `welcome` (CONTRACT §6)."""

    T: ClassVar[str] = "vendor"
    vendor: str
    token: str

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "vendor": self.vendor, "token": self.token}

    def __repr__(self) -> str:
        return f"Vendor(vendor={self.vendor!r}, token=<{len(self.token)}>)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    T: ClassVar[str] = "welcome"
    session: str
    heartbeat: int
    server_time: int

    def to_map(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "session": self.session,
            "heartbeat": self.heartbeat,
            "server_time": self.server_time,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Push:
    T: ClassVar[str] = "push"
    id: str
    msg_key: str
    push_type: str
    title: str
    content: str
    ext: Mapping[str, str] = field(default_factory=dict)
    created: int
    expires: int

    def to_map(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "id": self.id,
            "msg_key": self.msg_key,
            "push_type": self.push_type,
            "title": self.title,
            "content": self.content,
            "ext": dict(self.ext),
            "created": self.created,
            "expires": self.expires,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Bound:
    T: ClassVar[str] = "bound"
    user: str

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "user": self.user}


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbound:
    T: ClassVar[str] = "unbound"

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    T: ClassVar[str] = "pong"

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True, kw_only=True)
class VendorOk:
    T: ClassVar[str] = "vendor_ok"

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    T: ClassVar[str] = "error"
    code: str
    message: str

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    T: ClassVar[str] = "bye"
    reason: str

    def to_map(self) -> dict[str, Any]:
        return {"t": self.T, "reason": self.reason}


DeviceFrame = Hello | Ack | Bind | Unbind | Ping | Vendor
GatewayFrame = Welcome | Push | Bound | Unbound | Pong | VendorOk | Error | Bye
Frame = DeviceFrame | GatewayFrame


# --- decoding -----------------------------------------------------------------


def _str(m: Mapping[Any, Any], key: str, *, allow_empty: bool = True) -> str:
    value = m.get(key)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} must be a string")
    return value


def _id(m: Mapping[Any, Any], key: str) -> str:
    value = m.get(key)
    if not is_valid_id(value):
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"field {key!r} must be an ID (1-128 chars, no spaces)"
        )
    assert isinstance(value, str)
    return value


def _int(m: Mapping[Any, Any], key: str) -> int:
    value = m.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} must be an integer")
    return value


def _str_map(m: Mapping[Any, Any], key: str) -> dict[str, str]:
    value = m.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError(ErrorCode.BAD_FIELD, f"field {key!r} must be a map of strings")
    return value


def _hello(m: Mapping[Any, Any]) -> Hello:
    # Hello fields are checked loosely here (types only): which values are
    # acceptable is the connection's hello check (connection.hello_problem):
    # a version or platform it does not know is `bad_hello`, and a missing or
    # non-string token is read as "" so that it is `auth_failed`, as any bad
    # token is.
    # The vendor fields likewise: present but not a string reads as "", which
    # the hello check refuses by name.
    v = m.get("v")
    token = m.get("token")
    return Hello(
        v=v if isinstance(v, int) and not isinstance(v, bool) else -1,
        app=_str(m, "app"),
        device=_str(m, "device"),
        platform=_str(m, "platform"),
        token=token if isinstance(token, str) else "",
        vendor=_optional_text(m, "vendor"),
        vendor_token=_optional_text(m, "vendor_token"),
    )


def _optional_text(m: Mapping[Any, Any], key: str) -> str | None:
    if key not in m or m[key] is None:
        return None
    value = m[key]
    return value if isinstance(value, str) else ""


def _ack(m: Mapping[Any, Any]) -> Ack:
    ids = m.get("ids")
    if not isinstance(ids, list) or len(ids) > MAX_ACK_IDS:
        raise ProtocolError(
            ErrorCode.BAD_FIELD, f"field 'ids' must be a list of at most {MAX_ACK_IDS}"
        )
    if not all(isinstance(i, str) for i in ids):
        raise ProtocolError(ErrorCode.BAD_FIELD, "field 'ids' must hold strings")
    return Ack(ids=tuple(ids))


_DECODERS: dict[str, Callable[[Mapping[Any, Any]], Frame]] = {
    "hello": _hello,
    "ack": _ack,
    "bind": lambda m: Bind(user=_id(m, "user"), sig=_str(m, "sig")),
    "unbind": lambda m: Unbind(),
    "ping": lambda m: Ping(),
    "vendor": lambda m: Vendor(vendor=_str(m, "vendor"), token=_str(m, "token")),
    "vendor_ok": lambda m: VendorOk(),
    "welcome": lambda m: Welcome(
        session=_str(m, "session"),
        heartbeat=_int(m, "heartbeat"),
        server_time=_int(m, "server_time"),
    ),
    "push": lambda m: Push(
        id=_str(m, "id"),
        msg_key=_str(m, "msg_key"),
        push_type=_str(m, "push_type"),
        title=_str(m, "title"),
        content=_str(m, "content"),
        ext=_str_map(m, "ext"),
        created=_int(m, "created"),
        expires=_int(m, "expires"),
    ),
    "bound": lambda m: Bound(user=_str(m, "user")),
    "unbound": lambda m: Unbound(),
    "pong": lambda m: Pong(),
    "error": lambda m: Error(code=_str(m, "code"), message=_str(m, "message")),
    "bye": lambda m: Bye(reason=_str(m, "reason")),
}


def frame_from_map(m: object) -> Frame:
    """Build a frame from a decoded MessagePack object; unknown keys are ignored."""
    if not isinstance(m, dict):
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "a frame must be a MessagePack map")
    t = m.get("t")
    if not isinstance(t, str):
        raise ProtocolError(ErrorCode.MALFORMED_FRAME, "a frame needs a string key 't'")
    decoder = _DECODERS.get(t)
    if decoder is None:
        raise ProtocolError(ErrorCode.UNKNOWN_FRAME_TYPE, f"unknown frame type {t[:32]!r}")
    return decoder(m)

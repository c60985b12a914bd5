"""MessagePack codec: frame objects to bytes and back, with explicit limits."""

from __future__ import annotations

from typing import Any

import msgpack

from .closing import ErrorCode
from .errors import ProtocolError
from .frames import Frame, frame_from_map

DEFAULT_MAX_FRAME_SIZE = 65_536


def encode(frame: Frame) -> bytes:
    """The MessagePack bytes of one frame (one WebSocket message, or one TCP body)."""
    return encode_map(frame.to_map())


def encode_map(m: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(m, use_bin_type=True)
    return data


def decode(payload: bytes, *, max_size: int = DEFAULT_MAX_FRAME_SIZE) -> Frame:
    """Decode one complete frame; anything wrong raises `ProtocolError` only."""
    if len(payload) > max_size:
        raise ProtocolError(
            ErrorCode.FRAME_TOO_LARGE, f"frame of {len(payload)} bytes exceeds {max_size}"
        )
    try:
        obj = msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            max_str_len=max_size,
            max_bin_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size // 2,
            max_ext_len=max_size,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        # ExtraData, FormatError, StackError and bad UTF-8 are ValueErrors;
        # non-string map keys raise TypeError/ValueError depending on version.
        raise ProtocolError(
            ErrorCode.MALFORMED_FRAME, f"malformed MessagePack: {type(exc).__name__}"
        ) from None
    return frame_from_map(obj)

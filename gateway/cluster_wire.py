"""A stored message as the payload of a `deliver` / `broadcast` hint between nodes.

The receiving node sends it to its devices without reading the store, so the
hint carries the whole `Message` record (MessagePack, fields in order). What
cannot be decoded is refused with ValueError (the node logs it; the sweep
still brings the message from the store).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any

import msgpack

from gateway.store import Message

_FIELDS = [f.name for f in fields(Message)]
_INTS = {"seq", "created_at", "expires_at", "modified_at", "status"}
_TEXTS = {f for f in _FIELDS if f not in _INTS and f not in {"ext", "revoked", "verification"}}


_GETTER = attrgetter(*_FIELDS)


def encode_message(message: Message) -> bytes:
    # attrgetter, not dataclasses.astuple: that deep-copies `ext`, and this runs for
    # every message a node hints to another (it was a third of the hint's cost).
    data: bytes = msgpack.packb(_GETTER(message), use_bin_type=True)
    return data


def decode_message(payload: bytes) -> Message:
    try:
        values: Any = msgpack.unpackb(payload, raw=False, strict_map_key=True, max_ext_len=0)
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
        raise ValueError(f"message payload: malformed MessagePack ({type(exc).__name__})") from None
    if not isinstance(values, list) or len(values) != len(_FIELDS):
        raise ValueError("message payload: not a message record")
    record = dict(zip(_FIELDS, values, strict=True))
    for name in _INTS:
        if isinstance(record[name], bool) or not isinstance(record[name], int):
            raise ValueError(f"message payload: {name} is not an integer")
    for name in _TEXTS:
        if not isinstance(record[name], str):
            raise ValueError(f"message payload: {name} is not text")
    ext = record["ext"]
    if not isinstance(ext, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in ext.items()
    ):
        raise ValueError("message payload: ext is not a map of text")
    return Message(**record)

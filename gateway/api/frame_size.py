"""The size of a push's encoded `push` frame, computed without encoding it.

The payload limit counts the whole MessagePack `push` frame, with IDs of the
length the gateway generates and 13-digit timestamps. A multiple push checks
up to 1000 frames per call, so the size is summed from its parts (the fixed
part measured once, each string's MessagePack header and UTF-8 bytes, the
`ext` map encoded once per call) instead of building and encoding a frame
per target; tests/api/test_frame_size.py checks it against `encode`.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgpack

from protocol import Push, encode

ID_PLACEHOLDER = "0" * 26
TIME_PLACEHOLDER = 1_700_000_000_000
_EMPTY_STR = 1  # a MessagePack str of length 0 is one byte
_EMPTY_MAP = 1


def str_size(text: str) -> int:
    """Bytes of `text` as a MessagePack str (header and UTF-8)."""
    n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if n < 32:
        return n + 1
    if n < 256:
        return n + 2
    if n < 65_536:
        return n + 3
    return n + 5


def ext_size(ext: Mapping[str, str]) -> int:
    """Bytes of `ext` as the MessagePack map of a push frame."""
    return len(msgpack.packb(dict(ext), use_bin_type=True))


# Everything but msg_key, push_type, title, content and ext.
_FIXED = (
    len(
        encode(
            Push(
                id=ID_PLACEHOLDER,
                msg_key="",
                push_type="",
                title="",
                content="",
                ext={},
                created=TIME_PLACEHOLDER,
                expires=TIME_PLACEHOLDER,
            )
        )
    )
    - 4 * _EMPTY_STR
    - _EMPTY_MAP
)


def push_frame_size(
    msg_key: str | None, push_type: str, title: str, content: str, ext_bytes: int
) -> int:
    """Bytes of the encoded push frame (`ext_bytes` from `ext_size`)."""
    return (
        _FIXED
        + str_size(msg_key or ID_PLACEHOLDER)
        + str_size(push_type)
        + str_size(title)
        + str_size(content)
        + ext_bytes
    )

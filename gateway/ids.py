"""Generated identifiers: time-ordered, so message IDs sort by creation."""

from __future__ import annotations

import os
import threading

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_DIGITS = {c: i for i, c in enumerate(_ALPHABET)}
ID_LENGTH = 26
# Two digits per 10 bits: an ID's 130 bits are 13 lookups.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR_SHIFTS = tuple(range(120, -1, -10))
_PAIR_VALUES = {pair: value for value, pair in enumerate(_PAIRS)}
_POOL_BYTES = 4096


class _RandomPool(threading.local):
    """os.urandom read 4 KiB at a time (one system call per ~400 IDs, not one each);
    one pool per thread, so no two threads ever hand out the same bytes."""

    data: bytes
    at: int

    def __init__(self) -> None:
        self.empty()

    def empty(self) -> None:
        self.data = b""
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            self.data, self.at = os.urandom(_POOL_BYTES), 0
        start = self.at
        self.at = start + n
        return self.data[start : start + n]


_POOL = _RandomPool()
# A forked child must not hand out the bytes its parent will.
os.register_at_fork(after_in_child=_POOL.empty)


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(now_ms: int) -> str:
    """26 characters (ULID layout): 10 of milliseconds (50 bits), then 16 random (80 bits)."""
    value = (now_ms & ((1 << 50) - 1)) << 80 | int.from_bytes(_POOL.take(10), "big")
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def id_floor(now_ms: int) -> str:
    """The ID prefix of `now_ms`: every ID made before it sorts below, none made at or after it."""
    return _base32(now_ms & ((1 << 50) - 1), 10)


def is_message_id(value: str) -> bool:
    """Whether `value` can be an ID `new_id` made (so an ack for anything else is dropped)."""
    return len(value) == ID_LENGTH and not value.strip(_ALPHABET)


def created_ms_of(message_id: str) -> int | None:
    """The creation time a generated message ID carries (its first 10 characters)."""
    if len(message_id) != ID_LENGTH:
        return None
    value = 0
    pair_value = _PAIR_VALUES.get
    for start in (0, 2, 4, 6, 8):
        digits = pair_value(message_id[start : start + 2])
        if digits is None:
            return None
        value = value << 10 | digits
    return value

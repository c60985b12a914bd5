"""Generated identifiers: time-ordered, so message IDs sort by creation."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_DIGITS = {c: i for i, c in enumerate(_ALPHABET)}
ID_LENGTH = 26


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(now_ms: int) -> str:
    """26 characters (ULID layout): 10 of milliseconds (50 bits), then 16 random (80 bits)."""
    return _base32(now_ms & ((1 << 50) - 1), 10) + _base32(secrets.randbits(80), 16)


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
    for char in message_id[:10]:
        digit = _DIGITS.get(char)
        if digit is None:
            return None
        value = value * 32 + digit
    return value

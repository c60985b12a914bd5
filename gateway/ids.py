"""Generated identifiers: time-ordered, so message IDs sort by creation."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(now_ms: int) -> str:
    """26 characters: 48 bits of milliseconds then 80 random bits (ULID layout)."""
    return _base32(now_ms & ((1 << 50) - 1), 10) + _base32(secrets.randbits(80), 16)


def new_token(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)

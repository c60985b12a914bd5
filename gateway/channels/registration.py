"""A device's vendor registration: which vendor, and the token that vendor gave the app.

The rules (known vendors, token bounds) are the protocol's (protocol/vendors.py),
so a `hello`, a `vendor` frame and the API refuse exactly the same tokens.
"""

from __future__ import annotations

from protocol.vendors import MAX_TOKEN_LENGTH, registration_problem

from .errors import ChannelConfigError

__all__ = ["MAX_TOKEN_LENGTH", "token_tail", "validate_registration"]


def validate_registration(vendor: str, token: object) -> tuple[str, str]:
    """(vendor, token) checked: a known vendor, and a token that vendor could have issued."""
    problem = registration_problem(vendor, token)
    if problem is not None:
        raise ChannelConfigError(*problem)
    assert isinstance(token, str)
    return vendor, token


def token_tail(token: str) -> str:
    """The last 6 characters: what listings show of a vendor token (CONTRACT §6)."""
    return token[-6:]

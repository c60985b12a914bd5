"""A device's vendor registration: which vendor, and the token that vendor gave the app.

Token limits: APNs documents device tokens of up to 100 bytes (200 hex
characters) and vivo regIds of 23 characters; FCM, Huawei, MiPush and OPPO
publish no maximum, so pushgate takes the generous bounds below (real tokens
are far shorter: FCM ~160, Huawei ~130, MiPush ~44, OPPO ~40 characters).
"""

from __future__ import annotations

import re
from typing import Final

from .errors import ChannelConfigError, check_vendor

MAX_TOKEN_LENGTH: Final = {
    "apns": 200,
    "fcm": 4096,
    "huawei": 512,
    "xiaomi": 256,
    "oppo": 256,
    "vivo": 64,
}
_HEX = re.compile(r"[0-9a-fA-F]+")


def validate_registration(vendor: str, token: object) -> tuple[str, str]:
    """(vendor, token) checked: a known vendor, and a token that vendor could have issued."""
    check_vendor(vendor)
    if not isinstance(token, str) or not token:
        raise ChannelConfigError("token", "token must be a non-empty string")
    limit = MAX_TOKEN_LENGTH[vendor]
    if len(token) > limit:
        raise ChannelConfigError("token", f"a {vendor} token is at most {limit} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ChannelConfigError("token", "token must not contain whitespace or control characters")
    if vendor == "apns" and (not _HEX.fullmatch(token) or len(token) % 2):
        raise ChannelConfigError("token", "an APNs device token is hexadecimal bytes")
    return vendor, token


def token_tail(token: str) -> str:
    """The last 6 characters: what listings show of a vendor token (CONTRACT §6)."""
    return token[-6:]

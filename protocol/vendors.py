"""Vendor registrations a device may report (CONTRACT §6): which vendors exist,
and what token each of them could have issued.

APNs documents device tokens of up to 100 bytes (200 hex characters) and vivo
regIds of 23 characters (64 taken); FCM, Huawei, MiPush and OPPO publish no
maximum, so these bounds are generous (real tokens are far shorter: FCM ~160,
Huawei ~130, MiPush ~44, OPPO ~40 characters).
"""

from __future__ import annotations

import re
from typing import Final

VENDORS: Final = ("apns", "fcm", "huawei", "xiaomi", "oppo", "vivo")
MAX_TOKEN_LENGTH: Final = {
    "apns": 200,
    "fcm": 4096,
    "huawei": 512,
    "xiaomi": 256,
    "oppo": 256,
    "vivo": 64,
}
_HEX = re.compile(r"[0-9a-fA-F]+")


def registration_problem(vendor: object, token: object) -> tuple[str, str] | None:
    """(field, message) for what is wrong with a vendor registration, or None."""
    if not isinstance(vendor, str) or vendor not in VENDORS:
        return "vendor", f"unknown vendor; expected one of {', '.join(VENDORS)}"
    if not isinstance(token, str) or not token:
        return "token", "token must be a non-empty string"
    limit = MAX_TOKEN_LENGTH[vendor]
    if len(token) > limit:
        return "token", f"a {vendor} token is at most {limit} characters"
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        return "token", "token must not contain whitespace or control characters"
    if vendor == "apns" and (not _HEX.fullmatch(token) or len(token) % 2):
        return "token", "an APNs device token is hexadecimal bytes"
    return None

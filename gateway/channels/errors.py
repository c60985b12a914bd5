"""Errors of channel configuration: each names the field at fault, never its value."""

from __future__ import annotations

from typing import Final

VENDORS: Final = ("apns", "fcm", "huawei", "xiaomi", "oppo", "vivo")


class ChannelConfigError(ValueError):
    """Bad credentials or a bad vendor registration; the API answers 400 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_vendor(vendor: str, field: str = "vendor") -> str:
    if vendor not in VENDORS:
        raise ChannelConfigError(field, f"unknown vendor; expected one of {', '.join(VENDORS)}")
    return vendor

"""The `--vendor-*` and `--fallback-*` flags of `pushgate serve`, as one decorator:
the command receives them as `vendor_settings` and `fallback_settings`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gateway.vendor_settings import FallbackSettings, VendorSettings

F = TypeVar("F", bound=Callable[..., Any])

_FLAGS: list[Callable[[F], F]] = [
    click.option(
        "--fallback-interval",
        default=1.0,
        envvar="PUSHGATE_FALLBACK_INTERVAL",
        show_default=True,
        type=click.FloatRange(min=0.01),
        help="Seconds between looks for deliveries due to go through a vendor.",
    ),
    click.option(
        "--fallback-lease",
        default=60.0,
        envvar="PUSHGATE_FALLBACK_LEASE",
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds a node holds the deliveries it claimed (after a crash they wait this).",
    ),
    click.option(
        "--fallback-batch",
        default=500,
        envvar="PUSHGATE_FALLBACK_BATCH",
        show_default=True,
        type=click.IntRange(min=1, max=10_000),
        help="Deliveries claimed at a time.",
    ),
    click.option(
        "--vendor-ca-file",
        default=None,
        envvar="PUSHGATE_VENDOR_CA_FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="A PEM CA bundle to trust for vendor endpoints too (a private or test server).",
    ),
    click.option(
        "--vendor-breaker-failures",
        default=5,
        envvar="PUSHGATE_VENDOR_BREAKER_FAILURES",
        show_default=True,
        type=click.IntRange(min=1),
        help="Vendor calls in a row failing transiently that open its circuit.",
    ),
    click.option(
        "--vendor-breaker-seconds",
        default=10.0,
        envvar="PUSHGATE_VENDOR_BREAKER_SECONDS",
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds an open circuit fails fast before a probe (doubling, up to 300).",
    ),
    click.option(
        "--vendor-retries",
        default=3,
        envvar="PUSHGATE_VENDOR_RETRIES",
        show_default=True,
        type=click.IntRange(min=1, max=10),
        help="Attempts of a transient vendor answer within one send.",
    ),
]


def vendor_flags(command: F) -> F:
    """Add the flags to `command`, which gets `vendor_settings` and `fallback_settings`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        vendor = VendorSettings(
            ca_file=kwargs.pop("vendor_ca_file"),
            breaker_failures=kwargs.pop("vendor_breaker_failures"),
            breaker_seconds=kwargs.pop("vendor_breaker_seconds"),
            retries=kwargs.pop("vendor_retries"),
        )
        fallback = FallbackSettings(
            interval=kwargs.pop("fallback_interval"),
            lease=kwargs.pop("fallback_lease"),
            batch=kwargs.pop("fallback_batch"),
        )
        return command(*args, vendor_settings=vendor, fallback_settings=fallback, **kwargs)

    decorated: F = wrapper  # type: ignore[assignment]
    for flag in reversed(_FLAGS):
        decorated = flag(decorated)
    return decorated

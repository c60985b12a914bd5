"""Settings of the vendor channels and the fallback sender (the `--vendor-*` and
`--fallback-*` flags of `pushgate serve`): plain values, no dependencies."""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FallbackSettings:
    interval: float = 1.0  # seconds between claims when nothing was due
    lease: float = 60.0  # seconds a claim holds its rows (a crashed node's rows wait this)
    batch: int = 500  # rows per claim
    groups: int = 16  # (app, vendor) groups sent at once


@dataclass(frozen=True, slots=True)
class VendorSettings:
    """How vendors are reached and guarded."""

    ca_file: str | None = None  # extra PEM CA bundle to trust (a private or test endpoint)
    breaker_failures: int = 5  # calls in a row failing transiently open the circuit
    breaker_seconds: float = 10.0  # how long it stays open first
    retries: int = 3  # attempts per send within one claim
    max_concurrent: int = 8  # requests at once per (app, vendor)

    def tls_context(self) -> ssl.SSLContext | None:
        if self.ca_file is None:
            return None
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.ca_file)
        return context

"""Fixtures of the channel tests: a CA the stand-ins' certificates chain to, a wall clock."""

from __future__ import annotations

import pytest
import trustme

from gateway.clock import ManualClock

START_MS = 1_790_000_000_000  # 2026-09-21


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def wall() -> ManualClock:
    """The wall clock adapters read (JWT iat, token expiry, TTLs); tests move it."""
    return ManualClock(START_MS)

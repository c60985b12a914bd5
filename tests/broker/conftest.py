"""Fixtures: a unique key prefix per test on the machine's Redis, and private servers."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from gateway.broker import BrokerConfig

from .support import MACHINE_REDIS, PrivateRedis, delete_prefixed, fast_config

_counter = itertools.count()


@pytest.fixture(scope="session")
def session_prefix() -> Iterator[str]:
    """Every key of this session's tests lives under it; all are deleted at the end."""
    prefix = f"pushgate-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    trio.run(delete_prefixed, MACHINE_REDIS, prefix)


@pytest.fixture
def prefix(session_prefix: str) -> str:
    return f"{session_prefix}{next(_counter)}:"


@pytest.fixture
def config(prefix: str) -> BrokerConfig:
    return fast_config(MACHINE_REDIS, prefix)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, for killing and restarting."""
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.close()

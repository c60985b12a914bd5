"""A fresh PostgreSQL schema and Redis key prefix per test; nodes killed at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.broker.support import MACHINE_REDIS, delete_prefixed
from tests.harness import ServerProcess
from tests.store_pg.database import session_database

from .support import Nodes


@pytest.fixture(scope="session")
def nodes_prefix() -> Iterator[str]:
    prefix = f"pushgate-nodes-{uuid.uuid4().hex[:12]}:"
    yield prefix
    trio.run(delete_prefixed, MACHINE_REDIS, prefix)


@pytest.fixture(scope="package")
def three_nodes(
    tmp_path_factory: pytest.TempPathFactory, nodes_prefix: str
) -> Iterator[tuple[Nodes, list[ServerProcess]]]:
    """Three nodes of one gateway shared by the package's tests (each uses its own devices):
    starting processes is most of these tests' time."""
    store = session_database().fresh_url()
    prefix = f"{nodes_prefix}{uuid.uuid4().hex[:6]}:"
    running = Nodes(tmp_path_factory.mktemp("three"), store, MACHINE_REDIS, prefix)
    try:
        yield running, running.start_many(3)
    finally:
        running.stop_all()


@pytest.fixture
def nodes(tmp_path: Path, nodes_prefix: str) -> Iterator[Nodes]:
    store = session_database().fresh_url()
    prefix = f"{nodes_prefix}{uuid.uuid4().hex[:6]}:"
    running = Nodes(tmp_path, store, MACHINE_REDIS, prefix)
    try:
        yield running
    finally:
        running.stop_all()

"""Shared fixtures: a real gateway on free ports, with an injectable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock, SystemClock
from tests.harness import START_MS, RunningGateway, ServerProcess, running_gateway
from tests.store_pg.database import drop_session_database, session_database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_MS)


@pytest.fixture
async def gw(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningGateway]:
    async with running_gateway(tmp_path / "gw.db", clock=clock) as running:
        yield running


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """An in-process gateway on the system clock: device timestamps are wall time."""
    async with running_gateway(tmp_path / "sim.db", clock=SystemClock()) as running:
        yield running


@pytest.fixture
def server_processes() -> Iterator[list[ServerProcess]]:
    """Child servers a test starts; killed at the end whatever happens."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)
        server.close()


# --- PostgreSQL (pg branch): a database of the session's own, dropped at the end ---
# tests/store_pg/database.py makes it on first use: for tests/store_pg, and for the
# gateway suites when PUSHGATE_TEST_STORE=postgresql://… puts them on PostgreSQL.


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_session_database() -> Iterator[None]:
    yield
    drop_session_database()


@pytest.fixture
def pg_url() -> str:
    """The URL of an empty schema in the session's PostgreSQL database."""
    return session_database().fresh_url()

"""Both stores behind one fixture: the conformance tests run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.store import App, PostgresStore, SqliteStore, Store
from tests.harness import START_MS


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock, pg_url: str
) -> AsyncIterator[Store]:
    opened: SqliteStore | PostgresStore = (
        SqliteStore(str(tmp_path / "store.db"), clock=clock)
        if request.param == "sqlite"
        else PostgresStore(pg_url, clock=clock)
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def app(store: Store) -> App:
    return await store.upsert_app(
        app_id="app1", name="app1", api_key="key1", secret="secret1", verify=False
    )


@pytest.fixture
def day_start() -> int:
    return START_MS - START_MS % 86_400_000

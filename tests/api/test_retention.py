"""30-day retention: what the API shows at the edges, and the retention purge.

The clock is the gateway's ManualClock: 30 days pass by `advance`, and a
purge is triggered directly with `gateway.retention.purge_once()`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.store import RETENTION_MS, NewMessage, SqliteStore
from tests.harness import (
    APP,
    START_MS,
    RunningGateway,
    push_simple,
    running_gateway,
    wait_until,
)

DAY_MS = 86_400_000


def db_counts(gw: RunningGateway) -> tuple[int, int]:
    """(messages, deliveries) rows in the gateway's SQLite file, read beside the writer."""
    return file_counts(Path(gw.settings.db))


def file_counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        # a message to one device holds its delivery in its own row (docs/data-model.md)
        deliveries = conn.execute(
            "SELECT (SELECT count(*) FROM deliveries)"
            " + (SELECT count(*) FROM messages WHERE d_state IS NOT NULL)"
        ).fetchone()[0]
    finally:
        conn.close()
    return int(messages), int(deliveries)


async def visible(gw: RunningGateway, answer: dict[str, Any], target: str) -> tuple[bool, ...]:
    """(listed, found by search, details readable) for one pushed message."""
    async with gw.http() as client:
        listed = (await client.get("/v1/messages", params={"limit": 100})).json()["items"]
        found = (
            await client.get(
                "/v1/messages", params={"target_id": target, "msg_key": answer["msg_key"]}
            )
        ).json()["items"]
        details = await client.get(f"/v1/messages/{answer['message_id']}")
        assert details.status_code in (200, 404)
    return (
        answer["message_id"] in [i["message_id"] for i in listed],
        answer["message_id"] in [i["message_id"] for i in found],
        details.status_code == 200,
    )


def test_retention_is_30_days() -> None:
    assert RETENTION_MS == 30 * DAY_MS


async def test_30_days_minus_1_ms_is_kept_plus_1_ms_is_gone(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "dev-old", msg_key="old-1")
    clock.advance(RETENTION_MS - 1)
    assert await gw.gateway.retention.purge_once() == 0
    assert await visible(gw, answer, "dev-old") == (True, True, True)

    clock.advance(1)  # exactly 30 days: still inside the window (inclusive)
    assert await gw.gateway.retention.purge_once() == 0
    assert await visible(gw, answer, "dev-old") == (True, True, True)

    clock.advance(1)  # 30 days + 1 ms: hidden at once, even before a purge
    assert await visible(gw, answer, "dev-old") == (False, False, False)
    assert db_counts(gw) == (1, 1)
    assert await gw.gateway.retention.purge_once() == 1
    assert db_counts(gw) == (0, 0)  # the message and its delivery are gone
    assert await visible(gw, answer, "dev-old") == (False, False, False)


async def test_only_old_messages_are_purged(gw: RunningGateway, clock: ManualClock) -> None:
    async with gw.http() as client:
        old = await push_simple(client, "dev-1", msg_key="a")
        clock.advance(10 * DAY_MS)
        young = await push_simple(client, "dev-1", msg_key="b")
        clock.advance(20 * DAY_MS + 1)
        assert await gw.gateway.retention.purge_once() == 1
        listed = (await client.get("/v1/messages")).json()["items"]
        assert [i["message_id"] for i in listed] == [young["message_id"]]
        assert (await client.get(f"/v1/messages/{old['message_id']}")).status_code == 404
        assert (await client.get(f"/v1/messages/{young['message_id']}")).status_code == 200
    assert db_counts(gw) == (1, 1)


async def test_multiple_rows_leave_the_search_after_30_days(
    gw: RunningGateway, clock: ManualClock
) -> None:
    app = await gw.gateway.store.get_app(APP.app_id)
    assert app is not None
    await gw.gateway.store.insert_messages(
        app,
        [
            NewMessage(
                push_type="multiple",
                delivery_type="ios",
                target_id="dev-m",
                title="t",
                content="c",
                msg_key="m-1",
            )
        ],
    )
    params = {"target_id": "dev-m", "msg_key": "m-1"}
    async with gw.http() as client:
        clock.advance(RETENTION_MS)
        assert len((await client.get("/v1/messages", params=params)).json()["items"]) == 1
        clock.advance(1)
        assert (await client.get("/v1/messages", params=params)).json()["items"] == []


async def test_a_large_backlog_is_purged_in_batches(
    gw: RunningGateway, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await gw.gateway.store.get_app(APP.app_id)
    assert app is not None
    items = [
        NewMessage(
            push_type="simple", delivery_type="android", target_id=f"d{i}", title="t", content="c"
        )
        for i in range(1234)
    ]
    await gw.gateway.store.insert_messages(app, items)
    clock.advance(DAY_MS)
    async with gw.http() as client:
        keep = await push_simple(client, "dev-keep")
    clock.advance(RETENTION_MS - DAY_MS + 1)

    store = gw.gateway.store
    calls: list[tuple[int, int]] = []
    real_purge = store.purge_before

    async def counting_purge(cutoff: int, max_rows: int) -> tuple[int, int]:
        counts = await real_purge(cutoff, max_rows)
        calls.append(counts)
        return counts

    monkeypatch.setattr(store, "purge_before", counting_purge)
    monkeypatch.setattr(gw.gateway.retention, "max_rows", 500)
    assert await gw.gateway.retention.purge_once() == 1234
    # One store operation per at most 500 rows of each table; (0, 0): nothing left.
    assert calls == [(500, 500), (500, 500), (234, 234), (0, 0)]
    assert db_counts(gw) == (1, 1)
    async with gw.http() as client:
        listed = (await client.get("/v1/messages")).json()["items"]
    assert [i["message_id"] for i in listed] == [keep["message_id"]]


async def test_the_purge_runs_by_itself(tmp_path: Path) -> None:
    clock = ManualClock(1_795_000_000_000)
    async with running_gateway(tmp_path / "purge.db", clock=clock, purge_interval=0.05) as gw:
        async with gw.http() as client:
            await push_simple(client, "dev")
        assert db_counts(gw)[0] == 1
        clock.advance(RETENTION_MS + 1)
        await wait_until(lambda: gw.gateway.retention.purged_total > 0, "the retention purge")
        assert gw.gateway.retention.purged_total == 1
        assert db_counts(gw) == (0, 0)


async def test_one_purge_operation_touches_at_most_max_rows_deliveries(tmp_path: Path) -> None:
    """Old broadcasts with thousands of deliveries each are purged delivery rows first,
    never more than `max_rows` rows of a table in one store operation."""
    path = tmp_path / "wide.db"
    store = SqliteStore(str(path), clock=ManualClock(START_MS))
    await store.open()
    try:
        app = await store.upsert_app(app_id="a", name="a", api_key="k", secret="s", verify=False)
        first = NewMessage(
            push_type="broadcast", delivery_type="all", target_id="", title="t", content="c"
        )
        outcomes = await store.insert_messages(app, [first, replace(first, msg_key="second")])
        for outcome in outcomes:
            devices = [(f"dev-{i}", "android") for i in range(2500)]
            assert len(await store.open_broadcast("a", outcome.message.seq, devices)) == 2500
        assert file_counts(path) == (2, 5000)
        calls = []
        while (counts := await store.purge_before(START_MS + 1, 1000)) != (0, 0):
            calls.append(counts)
        assert all(m <= 1000 and d <= 1000 for m, d in calls), calls
        assert [sum(c) for c in zip(*calls, strict=True)] == [2, 5000]
        assert len(calls) == 5  # 5000 deliveries, 1000 per operation
        assert file_counts(path) == (0, 0)
    finally:
        await store.aclose()

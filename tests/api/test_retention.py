"""30-day retention: what the API shows at the edges, and the sweeper's purge.

The clock is the gateway's ManualClock: 30 days pass by `advance`, and a
sweep is triggered directly with `gateway.sweeper.sweep_once()`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from gateway.store import NewMessage
from gateway.store.listing import RETENTION_MS
from tests.harness import APP, RunningGateway, push_simple, running_gateway, wait_until

DAY_MS = 86_400_000


def db_counts(gw: RunningGateway) -> tuple[int, int]:
    """(messages, deliveries) rows in the gateway's SQLite file, read beside the writer."""
    conn = sqlite3.connect(gw.settings.db)
    try:
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
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
    assert await gw.gateway.sweeper.sweep_once() == 0
    assert await visible(gw, answer, "dev-old") == (True, True, True)

    clock.advance(1)  # exactly 30 days: still inside the window (inclusive)
    assert await gw.gateway.sweeper.sweep_once() == 0
    assert await visible(gw, answer, "dev-old") == (True, True, True)

    clock.advance(1)  # 30 days + 1 ms: hidden at once, even before a sweep
    assert await visible(gw, answer, "dev-old") == (False, False, False)
    assert db_counts(gw) == (1, 1)
    assert await gw.gateway.sweeper.sweep_once() == 1
    assert db_counts(gw) == (0, 0)  # the message and its delivery are gone
    assert await visible(gw, answer, "dev-old") == (False, False, False)


async def test_only_old_messages_are_purged(gw: RunningGateway, clock: ManualClock) -> None:
    async with gw.http() as client:
        old = await push_simple(client, "dev-1", msg_key="a")
        clock.advance(10 * DAY_MS)
        young = await push_simple(client, "dev-1", msg_key="b")
        clock.advance(20 * DAY_MS + 1)
        assert await gw.gateway.sweeper.sweep_once() == 1
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
    calls: list[int] = []
    real_purge = store.purge_before

    async def counting_purge(cutoff: int, limit: int) -> int:
        count = await real_purge(cutoff, limit)
        calls.append(count)
        return count

    monkeypatch.setattr(store, "purge_before", counting_purge)
    assert await gw.gateway.sweeper.sweep_once() == 1234
    assert calls == [500, 500, 234]  # one store operation per batch of at most 500
    assert db_counts(gw) == (1, 1)
    async with gw.http() as client:
        listed = (await client.get("/v1/messages")).json()["items"]
    assert [i["message_id"] for i in listed] == [keep["message_id"]]


async def test_the_sweeper_runs_by_itself(tmp_path: Path) -> None:
    clock = ManualClock(1_795_000_000_000)
    async with running_gateway(tmp_path / "sweep.db", clock=clock, sweep_interval=0.05) as gw:
        async with gw.http() as client:
            await push_simple(client, "dev")
        assert db_counts(gw)[0] == 1
        clock.advance(RETENTION_MS + 1)
        await wait_until(lambda: gw.gateway.sweeper.purged_total > 0, "the sweeper's purge")
        assert gw.gateway.sweeper.purged_total == 1
        assert db_counts(gw) == (0, 0)

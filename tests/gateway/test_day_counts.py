"""The console's day counters on SQLite: noted by each operation, written once per
group commit, and seen by a read in the same group commit (stats.DayCounts)."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from gateway.clock import ManualClock
from gateway.store import SqliteStore
from gateway.store.stats import PushStats
from tests.harness import SAFETY_NET, START_MS
from tests.store_pg.support import simple

DAY_START = START_MS - START_MS % 86_400_000


async def test_a_read_in_the_same_group_commit_sees_the_counts_noted_before_it(
    tmp_path: Path,
) -> None:
    store = SqliteStore(str(tmp_path / "store.db"), clock=ManualClock(START_MS))
    await store.open()
    try:
        app = await store.upsert_app(
            app_id="app1", name="app1", api_key="key1", secret="s1", verify=False
        )
        gate = threading.Event()
        seen: list[PushStats] = []

        async def queued(count: int) -> None:
            # The writer thread is held by the gate: ops queue in the order started.
            while store.statistics().in_flight < count:
                await trio.sleep(0.001)

        async def read() -> None:
            seen.append(await store.push_stats("app1", DAY_START))

        with trio.fail_after(SAFETY_NET):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(store._writer.call, lambda conn: gate.wait(SAFETY_NET))
                await queued(1)
                for k in range(5):
                    nursery.start_soon(store.insert_messages, app, [simple(f"dev-{k}")])
                    await queued(2 + k)
                nursery.start_soon(read)
                await queued(7)
                for k in range(5, 8):
                    nursery.start_soon(store.insert_messages, app, [simple(f"dev-{k}")])
                    await queued(8 + k - 5)
                gate.set()
        (in_batch,) = seen
        assert (in_batch.pushes, in_batch.ackable, in_batch.acked) == (5, 5, 0)
        after = await store.push_stats("app1", DAY_START)
        assert (after.pushes, after.ackable, after.acked) == (8, 8, 0)
    finally:
        await store.aclose()

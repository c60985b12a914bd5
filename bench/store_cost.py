"""The SQLite store alone: what one message costs the writer thread, phase by phase.

    .venv/bin/python -m bench.store_cost --messages 20000 --devices 1000

No sockets, no API: device pushes go in through `SqliteStore.insert_messages`
(many concurrent callers, so they share group commits as the API's do), then
every message is marked sent and acked through the deferred writes the
sessions use, then one offline device's backlog is drained page by page the
way a session does (pending_page, then an ack per page). Per phase it prints
the wall time, the writer thread's busy time (sum of its transactions,
fsyncs included) and its CPU time, per message too: the store's share of the
CPU per delivered and acked message. The file is real (WAL, synchronous=FULL)
in a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from gateway.store.records import App, NewMessage
from gateway.store.sqlite import SqliteStore

from .common import CONTENT, TITLE, device_name

CALLERS = 200  # concurrent insert callers (the API's in-flight requests)
MARKS_PER_CALL = 20  # message ids per sent mark / ack, as a session batches them
PAGE = 500  # backlog page size (gateway/backlog.py reads pages this big)


@dataclass
class Phase:
    name: str
    count: int
    wall: float
    busy: float
    cpu: float
    commits: int

    def line(self) -> str:
        per = self.cpu / self.count * 1e6 if self.count else 0.0
        rate = self.count / self.wall if self.wall else 0.0
        return (
            f"{self.name:<14} {self.count:>7} msgs  wall {self.wall:6.3f} s"
            f"  writer busy {self.busy:6.3f} s  writer CPU {self.cpu:6.3f} s = {per:5.1f} µs/msg"
            f"  {rate:7.0f} msg/s  {self.commits:>4} commits"
        )


class Meter:
    """The writer thread's busy time, CPU time and commits, read around each phase.

    Busy time is wall time inside transactions (fsyncs, waits for the GIL);
    CPU time is the thread's own (`time.thread_time` read on that thread
    after each commit): the store's CPU, fsync waits not included.
    """

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.busy = 0.0
        self.cpu = 0.0
        self.commits = 0
        store.observe_commits(self._observe)

    def _observe(self, size: int, seconds: float) -> None:
        self.busy += seconds
        self.cpu = time.thread_time()
        self.commits += 1

    async def phase(self, name: str, count: int, work: object) -> Phase:
        busy, cpu, commits = self.busy, self.cpu, self.commits
        started = time.perf_counter()
        await work  # type: ignore[misc]
        wall = time.perf_counter() - started
        # The observer runs after a commit's callers are woken: one more
        # commit, awaited, makes sure it has seen every commit of the phase.
        await self.store.count_apps()
        return Phase(name, count, wall, self.busy - busy, self.cpu - cpu, self.commits - commits)


def _push(device: str, n: int) -> NewMessage:
    return NewMessage("simple", "device", device, TITLE, f"{CONTENT} {n}", {"n": str(n)})


async def _insert(store: SqliteStore, app: App, targets: Sequence[str]) -> list[list[str]]:
    """Insert one push per target; the message ids per target index."""
    ids: list[list[str]] = [[] for _ in targets]
    cursor = iter(range(len(targets)))

    async def caller() -> None:
        for n in cursor:
            (outcome,) = await store.insert_messages(app, [_push(targets[n], n)])
            ids[n].append(outcome.message.message_id)

    async with trio.open_nursery() as nursery:
        for _ in range(CALLERS):
            nursery.start_soon(caller)
    return ids


def _by_device(targets: Sequence[str], ids: list[list[str]]) -> dict[str, list[str]]:
    per: dict[str, list[str]] = {}
    for device, got in zip(targets, ids, strict=True):
        per.setdefault(device, []).extend(got)
    return per


async def _mark_sent(store: SqliteStore, per_device: dict[str, list[str]], app_id: str) -> None:
    for device, ids in per_device.items():
        for k in range(0, len(ids), MARKS_PER_CALL):
            store.queue_sent_nowait(app_id, device, ids[k : k + MARKS_PER_CALL])
    await _settle(store)


async def _ack(
    store: SqliteStore, per_device: dict[str, list[str]], app_id: str, expect: int
) -> None:
    acked = 0
    done = trio.Event()

    def counted(ids: Sequence[str], changed: int, error: BaseException | None) -> None:
        nonlocal acked
        if error is not None:
            raise error
        acked += changed
        if acked >= expect:
            done.set()

    for device, ids in per_device.items():
        for k in range(0, len(ids), MARKS_PER_CALL):
            await store.queue_ack(app_id, device, ids[k : k + MARKS_PER_CALL], counted)
    with trio.fail_after(300):
        await done.wait()
    if acked != expect:
        raise AssertionError(f"{acked} acks recorded, {expect} expected")


async def _settle(store: SqliteStore) -> None:
    """Wait until every deferred write is committed (an awaited op commits after them)."""
    await store.count_apps()


async def _drain(store: SqliteStore, app: App, device: str, expect: int) -> None:
    """The offline-first drain: hello, then page after page, each page acked."""
    _, page = await store.device_online(app.app_id, device, "android", page_size=PAGE)
    seen = 0
    done = trio.Event()
    acked = 0

    def counted(ids: Sequence[str], changed: int, error: BaseException | None) -> None:
        nonlocal acked
        if error is not None:
            raise error
        acked += changed
        if acked >= expect:
            done.set()

    while page:
        seen += len(page)
        await store.queue_ack(app.app_id, device, [m.message_id for m in page], counted)
        _, page = await store.pending_page(app.app_id, device, after_seq=page[-1].seq, limit=PAGE)
    with trio.fail_after(300):
        await done.wait()
    if seen != expect or acked != expect:
        raise AssertionError(f"drained {seen}, acked {acked}, {expect} expected")


async def run(messages: int, devices: int, backlog: int, directory: Path) -> list[Phase]:
    store = SqliteStore(str(directory / "store.db"))
    await store.open()
    try:
        meter = Meter(store)
        app = await store.upsert_app(
            app_id="bench", name="bench", api_key="k", secret="s", verify=False
        )
        targets = [device_name(n % devices) for n in range(messages)]
        holder: list[list[list[str]]] = []

        async def insert() -> None:
            holder.append(await _insert(store, app, targets))

        phases = [await meter.phase("insert", messages, insert())]
        per_device = _by_device(targets, holder[0])
        phases.append(
            await meter.phase("sent mark", messages, _mark_sent(store, per_device, app.app_id))
        )
        phases.append(
            await meter.phase("ack", messages, _ack(store, per_device, app.app_id, messages))
        )
        offline = "offline-device"
        await meter.phase("backlog insert", backlog, _insert(store, app, [offline] * backlog))
        phases.append(await meter.phase("drain+ack", backlog, _drain(store, app, offline, backlog)))
        return phases
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_cost", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=20_000, help="one offline device's")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="store-cost-") as tmp:
        phases = trio.run(run, args.messages, args.devices, args.backlog, Path(tmp))
    total = sum(p.cpu for p in phases[:3])
    for phase in phases:
        print(phase.line())
    print(
        f"{'per message':<14} insert + sent + ack: {total / args.messages * 1e6:.1f} µs"
        " of writer CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

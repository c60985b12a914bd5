"""The vendor fallback on the SQLite store's folded data model: a message to one
device carries its delivery in its own row (no `deliveries` row), and still gets
scheduled, claimed and its vendor's answer recorded, seen in the push details."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.store import App, SqliteStore
from gateway.store.vendor_records import FallbackOutcome
from tests.store_pg.support import ack, push_one, simple

DAY_MS = 86_400_000


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "folded.db"


@pytest.fixture
async def store(db_path: Path, clock: ManualClock) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(str(db_path), clock=clock)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
def peek(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection on the store's file, to see the rows themselves."""
    with closing(sqlite3.connect(db_path)) as conn:
        yield conn


def _schedule(peek: sqlite3.Connection) -> list[tuple[int, str, int]]:
    rows = peek.execute("SELECT message_seq, device_id, due_at FROM vendor_fallbacks ORDER BY 1, 2")
    return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]


def _delivery_rows(peek: sqlite3.Connection) -> int:
    return int(peek.execute("SELECT count(*) FROM deliveries").fetchone()[0])


async def _routable(store: SqliteStore, device: str, vendor: str = "fcm") -> None:
    await store.put_channel("app1", vendor, b"sealed")
    await store.set_vendor_registration("app1", device, vendor, "tok-" + device)


async def test_a_single_device_push_is_scheduled_claimed_and_its_acceptance_recorded(
    store: SqliteStore, app: App, clock: ManualClock, peek: sqlite3.Connection
) -> None:
    await _routable(store, "dev-1")
    await store.put_channel_policy("app1", 3)
    message = await push_one(store, app, simple("dev-1"))
    # Folded: the delivery is in the message row, and the trigger on messages scheduled it.
    assert _delivery_rows(peek) == 0
    assert _schedule(peek) == [(message.seq, "dev-1", message.created_at + 3_000)]
    assert await store.claim_fallbacks("n", 30_000, 10) == []
    clock.advance(3_000)
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    assert (claim.message_id, claim.device_id, claim.vendor) == (message.message_id, "dev-1", "fcm")
    assert await store.finish_fallbacks([FallbackOutcome(claim, 2, "HTTP 200")]) == 1
    found = await store.get_message("app1", message.message_id)
    assert found is not None
    shown, (delivery,) = found
    assert shown.status == 2
    assert (delivery.device_id, delivery.status, delivery.channel, delivery.code) == (
        "dev-1",
        2,
        "fcm",
        2,
    )
    assert delivery.acked_at == clock.now_ms() and delivery.sent_at == clock.now_ms()
    (answer,) = await store.vendor_answers("app1", message.seq)
    assert (answer.device_id, answer.vendor, answer.code, answer.raw) == (
        "dev-1",
        "fcm",
        2,
        "HTTP 200",
    )
    assert _schedule(peek) == []
    stats = await store.push_stats("app1", clock.now_ms() - clock.now_ms() % DAY_MS)
    assert (stats.pushes, stats.ackable, stats.acked) == (1, 1, 1)
    # The device's own socket has nothing left to send, and a late ack changes nothing.
    assert (await store.pending_page("app1", "dev-1", after_seq=0, limit=10))[1] == []
    assert await ack(store, app, "dev-1", [message.message_id]) == 0


async def test_a_refusal_shows_its_code_and_the_device_can_still_ack(
    store: SqliteStore, app: App, clock: ManualClock
) -> None:
    await _routable(store, "dev-1")
    await store.put_channel_policy("app1", 0)
    refused = await push_one(store, app, simple("dev-1", "refused"))
    oppo = await push_one(store, app, simple("dev-1", "oppo"))
    first, second = await store.claim_fallbacks("n", 30_000, 10)
    assert [first.message_id, second.message_id] == [refused.message_id, oppo.message_id]
    outcomes = [FallbackOutcome(first, 90000003, "nope"), FallbackOutcome(second, -1, "oppo")]
    assert await store.finish_fallbacks(outcomes) == 2
    for message, status, code in ((refused, 90000003, 90000003), (oppo, 0, -1)):
        found = await store.get_message("app1", message.message_id)
        assert found is not None
        shown, (delivery,) = found
        # A code that is also a common status (-1) stays on the delivery only.
        assert shown.status == status
        assert (delivery.status, delivery.channel, delivery.code) == (0, "fcm", code)
    titles = [
        m.title for m in (await store.pending_page("app1", "dev-1", after_seq=0, limit=10))[1]
    ]
    assert titles == ["refused", "oppo"]
    assert await ack(store, app, "dev-1", [refused.message_id]) == 1
    found = await store.get_message("app1", refused.message_id)
    assert found is not None and found[0].status == 2


async def test_a_user_message_is_scheduled_per_registered_device(
    store: SqliteStore, app: App, clock: ManualClock, peek: sqlite3.Connection
) -> None:
    await store.bind("app1", "dev-a", "user-1")
    await store.bind("app1", "dev-b", "user-1")
    await _routable(store, "dev-b", "huawei")
    await store.put_channel_policy("app1", 0)
    message = await push_one(store, app, simple("user-1"))
    assert _delivery_rows(peek) == 2
    assert _schedule(peek) == [(message.seq, "dev-b", message.created_at)]
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    assert (claim.device_id, claim.vendor) == ("dev-b", "huawei")
    assert await store.finish_fallbacks([FallbackOutcome(claim, 2, "ok")]) == 1
    found = await store.get_message("app1", message.message_id)
    assert found is not None
    shown, deliveries = found
    assert shown.status == 2
    assert [(d.device_id, d.status, d.channel) for d in deliveries] == [
        ("dev-a", 0, "self"),
        ("dev-b", 2, "huawei"),
    ]


async def test_an_approved_message_is_scheduled_from_its_approval(
    store: SqliteStore, clock: ManualClock, peek: sqlite3.Connection
) -> None:
    app = await store.upsert_app(
        app_id="app1", name="app1", api_key="key1", secret="secret1", verify=True
    )
    await _routable(store, "dev-1")
    await store.put_channel_policy("app1", 2)
    waiting = await push_one(store, app, simple("dev-1", "waiting"))
    rejected = await push_one(store, app, simple("dev-1", "rejected"))
    assert _schedule(peek) == []
    clock.advance(60_000)
    assert await store.verify("app1", rejected.message_id, approve=False) is not None
    assert await store.verify("app1", waiting.message_id, approve=True) is not None
    assert _schedule(peek) == [(waiting.seq, "dev-1", clock.now_ms() + 2_000)]
    clock.advance(2_000)
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    assert claim.message_id == waiting.message_id


async def test_no_credentials_no_schedule_and_a_late_registration_catches_up(
    store: SqliteStore, app: App, clock: ManualClock, peek: sqlite3.Connection
) -> None:
    await store.set_vendor_registration("app1", "dev-1", "xiaomi", "tok")
    await store.put_channel_policy("app1", 1)
    pending = await push_one(store, app, simple("dev-1", "pending"))
    acked = await push_one(store, app, simple("dev-1", "acked"))
    revoked = await push_one(store, app, simple("dev-1", "revoked"))
    assert _schedule(peek) == []  # the app has no credentials for any vendor
    assert await ack(store, app, "dev-1", [acked.message_id]) == 1
    await store.revoke("app1", revoked.message_id)
    await store.put_channel("app1", "xiaomi", b"sealed")
    await store.set_vendor_registration("app1", "dev-1", "xiaomi", "tok-2")
    # Only the pending one (the partial index of pending folded rows), due from its creation.
    assert _schedule(peek) == [(pending.seq, "dev-1", pending.created_at + 1_000)]


async def test_purging_a_message_drops_its_schedule_and_answers(
    store: SqliteStore, app: App, clock: ManualClock, peek: sqlite3.Connection
) -> None:
    await _routable(store, "dev-1")
    await store.put_channel_policy("app1", 0)
    answered = await push_one(store, app, simple("dev-1", "answered"))
    await push_one(store, app, simple("dev-1", "scheduled"))
    claim, _ = await store.claim_fallbacks("n", 30_000, 10)
    await store.finish_fallbacks([FallbackOutcome(claim, 90000011, "503", retry_at=10**15)])
    assert len(_schedule(peek)) == 2 and len(await store.vendor_answers("app1", answered.seq)) == 1
    clock.advance(1)
    assert await store.purge_before(clock.now_ms(), 100) == (2, 2)
    assert _schedule(peek) == []
    assert await store.vendor_answers("app1", answered.seq) == []


async def test_one_call_of_many_pushes_schedules_exactly_the_routable_pending_ones(
    store: SqliteStore, app: App, peek: sqlite3.Connection
) -> None:
    await store.bind("app1", "dev-u", "user-1")
    await _routable(store, "dev-1")
    await _routable(store, "dev-u")
    await store.set_vendor_registration("app1", "dev-other", "apns", "tok")  # no apns credentials
    (kept,) = await store.insert_messages(app, [simple("dev-1", "kept", msg_key="k")])
    items = [
        simple("dev-1", "kept", msg_key="k"),  # a repeat: the stored message, not a new one
        simple("dev-1", "a"),
        simple("dev-2", "unregistered"),
        simple("user-1", "user"),
        simple("dev-other", "other vendor"),
        simple("dev-1", "b"),
    ]
    outcomes = await store.insert_messages(app, items)
    assert outcomes[0].duplicate and outcomes[0].message.seq == kept.message.seq
    seqs = {o.message.title: o.message.seq for o in outcomes}
    assert [(s, d) for s, d, _ in _schedule(peek)] == [
        (kept.message.seq, "dev-1"),
        (seqs["a"], "dev-1"),
        (seqs["user"], "dev-u"),
        (seqs["b"], "dev-1"),
    ]

"""The vendor channels' tables behind the Store interface, on SQLite and PostgreSQL:
credentials, policy, registrations, and the fallback schedule with its lease."""

from __future__ import annotations

import trio

from gateway.clock import ManualClock
from gateway.store import App, PostgresStore, SqliteStore, Store
from gateway.store.vendor_records import FallbackOutcome
from tests.store_pg.support import ack, push_one, simple


async def _routable(store: Store, app: App, device: str = "dev-1") -> None:
    await store.put_channel(app.app_id, "fcm", b"sealed")
    await store.set_vendor_registration(app.app_id, device, "fcm", "tok-" + device)


async def test_credentials_and_policy_round_trip(store: Store, app: App) -> None:
    assert await store.put_channel("app1", "fcm", b"blob-1") is True
    assert await store.put_channel("app1", "fcm", b"blob-2") is False
    stored = await store.get_channel("app1", "fcm")
    assert stored is not None and stored.blob == b"blob-2"
    assert [c.vendor for c in await store.list_channels("app1")] == ["fcm"]
    assert await store.list_channels("other") == []
    assert (await store.get_channel_policy("app1")).fallback_after_seconds == 10
    await store.put_channel_policy("app1", 0)
    assert (await store.get_channel_policy("app1")).fallback_after_seconds == 0
    assert await store.delete_channel("app1", "fcm") is True
    assert await store.delete_channel("app1", "fcm") is False


async def test_a_delivery_is_due_after_the_policy_and_claimed_once(
    store: Store, app: App, clock: ManualClock
) -> None:
    await _routable(store, app)
    await store.put_channel_policy("app1", 5)
    message = await push_one(store, app, simple("dev-1"))
    assert await store.claim_fallbacks("node-a", 30_000, 10) == []
    clock.advance(5_000)
    (claim,) = await store.claim_fallbacks("node-a", 30_000, 10)
    assert (claim.message_id, claim.vendor, claim.token) == (message.message_id, "fcm", "tok-dev-1")
    # Leased: another node finds nothing until the lease ends.
    assert await store.claim_fallbacks("node-b", 30_000, 10) == []
    clock.advance(30_000)
    (again,) = await store.claim_fallbacks("node-b", 30_000, 10)
    assert again.attempts == 2
    # The first claimer's late answer does not delete the row node-b holds.
    assert await store.finish_fallbacks([FallbackOutcome(claim, 2)]) == 1
    _, (delivery,) = await store.get_message("app1", message.message_id) or (None, [])
    assert (delivery.status, delivery.channel, delivery.code) == (2, "fcm", 2)
    fetched = await store.get_message("app1", message.message_id)
    assert fetched is not None and fetched[0].status == 2


async def test_refusals_keep_the_code_and_dead_tokens_go(
    store: Store, app: App, clock: ManualClock
) -> None:
    await _routable(store, app)
    await store.put_channel_policy("app1", 0)
    message = await push_one(store, app, simple("dev-1"))
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    raw = 'HTTP 404 {"error": "UNREGISTERED"}'
    await store.finish_fallbacks([FallbackOutcome(claim, 90000003, raw, dead_token=True)])
    fetched = await store.get_message("app1", message.message_id)
    assert fetched is not None
    assert fetched[0].status == 90000003
    (delivery,) = fetched[1]
    assert (delivery.status, delivery.channel, delivery.code) == (0, "fcm", 90000003)
    (answer,) = await store.vendor_answers("app1", message.seq)
    assert (answer.device_id, answer.code, answer.raw) == ("dev-1", 90000003, raw)
    assert await store.get_vendor_registration("app1", "dev-1") is None
    # Nothing is due any more; the self-built channel still delivers it.
    clock.advance(60_000)
    assert await store.claim_fallbacks("n", 30_000, 10) == []
    assert await ack(store, app, "dev-1", [message.message_id]) == 1


async def test_a_transient_answer_is_due_again(store: Store, app: App, clock: ManualClock) -> None:
    await _routable(store, app)
    await store.put_channel_policy("app1", 0)
    await push_one(store, app, simple("dev-1"))
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    retry_at = clock.now_ms() + 2_000
    await store.finish_fallbacks([FallbackOutcome(claim, 90000011, "503", retry_at=retry_at)])
    assert await store.claim_fallbacks("n", 30_000, 10) == []
    clock.advance(2_000)
    assert len(await store.claim_fallbacks("n", 30_000, 10)) == 1


async def test_acked_revoked_expired_and_unrouted_deliveries_are_never_claimed(
    store: Store, app: App, clock: ManualClock
) -> None:
    await store.put_channel_policy("app1", 0)
    await push_one(store, app, simple("dev-0"))  # no registration at all
    await _routable(store, app, "dev-1")
    await _routable(store, app, "dev-2")
    await _routable(store, app, "dev-3")
    acked = await push_one(store, app, simple("dev-1"))
    await ack(store, app, "dev-1", [acked.message_id])
    revoked = await push_one(store, app, simple("dev-2"))
    await store.revoke("app1", revoked.message_id)
    await push_one(store, app, simple("dev-3", expired_seconds=1))
    clock.advance(1_000)
    assert await store.claim_fallbacks("n", 30_000, 10) == []


async def test_a_late_registration_schedules_pending_deliveries(
    store: Store, app: App, clock: ManualClock
) -> None:
    await store.put_channel("app1", "huawei", b"sealed")
    await store.put_channel_policy("app1", 0)
    message = await push_one(store, app, simple("dev-9"))
    assert await store.claim_fallbacks("n", 30_000, 10) == []
    await store.set_vendor_registration("app1", "dev-9", "huawei", "hw-token")
    registration = await store.get_vendor_registration("app1", "dev-9")
    assert registration is not None and registration.token == "hw-token"
    (claim,) = await store.claim_fallbacks("n", 30_000, 10)
    assert (claim.message_id, claim.vendor) == (message.message_id, "huawei")
    assert await store.delete_vendor_registration("app1", "dev-9") is True
    clock.advance(60_000)
    assert await store.claim_fallbacks("n", 30_000, 10) == []  # the registration is gone


async def test_two_nodes_claiming_at_once_never_take_the_same_delivery(
    store: Store, app: App, clock: ManualClock
) -> None:
    await _routable(store, app)
    await store.put_channel_policy("app1", 0)
    pushed = {(await push_one(store, app, simple("dev-1", f"m{i}"))).message_id for i in range(40)}
    other: SqliteStore | PostgresStore = (
        SqliteStore(store.path, clock=clock)
        if isinstance(store, SqliteStore)
        else PostgresStore(store.url, clock=clock)  # type: ignore[attr-defined]
    )
    await other.open()
    taken: dict[str, list[str]] = {"a": [], "b": []}
    try:

        async def node(name: str, node_store: Store) -> None:
            for i in range(8):  # a claim id per claim, as the sender makes them
                claims = await node_store.claim_fallbacks(f"{name}:{i}", 30_000, 5)
                taken[name] += [c.message_id for c in claims]
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(node, "a", store)
            nursery.start_soon(node, "b", other)
    finally:
        await other.aclose()
    assert not set(taken["a"]) & set(taken["b"])
    assert sorted(taken["a"] + taken["b"]) == sorted(pushed)

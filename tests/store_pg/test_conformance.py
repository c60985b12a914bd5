"""The Store interface, behaving identically on SQLite and on PostgreSQL.

Every test runs twice (the `store` fixture): what one store answers, the
other must answer too, so the gateway and the API work the same on both.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio

from gateway.clock import ManualClock
from gateway.store import (
    App,
    MsgKeyConflict,
    NewMessage,
    NotWaitingForVerify,
    Store,
)
from tests.harness import SAFETY_NET
from tests.store_pg.support import ack, page_ids, push_one, simple


async def test_an_app_is_found_by_its_key_and_updated_in_place(store: Store, app: App) -> None:
    assert await store.app_by_api_key("key1") == app
    assert await store.app_by_api_key("other") is None
    again = await store.upsert_app(
        app_id="app1", name="app1", api_key="key2", secret="s2", verify=True
    )
    assert await store.app_by_api_key("key1") is None
    assert await store.app_by_api_key("key2") == again == await store.get_app("app1")
    assert await store.count_apps() == 1


async def test_a_push_reads_back_exactly_as_stored(store: Store, app: App) -> None:
    odd = "NUL \x00 inside, \x01 leading marker, emoji 📬, quotes \"', COPY's \t \n \\N \\."
    item = NewMessage(
        "simple",
        "android",
        "dev-1",
        "\x01" + odd,
        odd,
        ext={"k\x00": "v\x00", "é": "ü", "tab\t": "line\nbreak \\N"},
        msg_key="key-1",
    )
    message = await push_one(store, app, item)
    found = await store.get_message("app1", message.message_id)
    assert found is not None
    stored, deliveries = found
    assert (stored.title, stored.content, stored.ext) == (item.title, item.content, item.ext)
    assert stored.msg_key == "key-1" and stored.status == 0 and not stored.revoked
    assert [(d.device_id, d.status, d.channel) for d in deliveries] == [("dev-1", 0, "self")]
    assert await store.search_message("app1", "dev-1", "key-1") == message
    assert await store.get_message("app2", message.message_id) is None


async def test_a_repeated_msg_key_is_a_duplicate_or_a_conflict(store: Store, app: App) -> None:
    first = await push_one(store, app, simple("dev-1", msg_key="k"))
    (again,) = await store.insert_messages(app, [simple("dev-1", msg_key="k")])
    assert again.duplicate and again.message.message_id == first.message_id
    assert again.device_ids == ()
    with pytest.raises(MsgKeyConflict) as caught:
        await store.insert_messages(app, [simple("dev-2"), simple("dev-1", "other", msg_key="k")])
    assert caught.value.index == 1
    # All or nothing: the first item of the conflicting call was not stored either.
    assert await page_ids(store, app, "dev-2") == []
    # The same key twice in one call: the second is the first's duplicate.
    outcomes = await store.insert_messages(
        app, [simple("dev-3", msg_key="k3"), simple("dev-3", msg_key="k3")]
    )
    assert [o.duplicate for o in outcomes] == [False, True]
    assert outcomes[0].message == outcomes[1].message


async def test_concurrent_pushes_in_one_group_commit_fail_alone(store: Store, app: App) -> None:
    await push_one(store, app, simple("dev-x", msg_key="taken"))
    results: dict[int, object] = {}

    async def push(n: int) -> None:
        item = simple("dev-x", "other", msg_key="taken") if n == 7 else simple(f"dev-{n}")
        try:
            results[n] = (await store.insert_messages(app, [item]))[0].device_ids
        except MsgKeyConflict as exc:
            results[n] = exc

    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(push, n)
    assert isinstance(results.pop(7), MsgKeyConflict)
    assert results == {n: (f"dev-{n}",) for n in range(50) if n != 7}
    assert store.statistics().in_flight == 0


async def test_a_device_reads_its_backlog_in_pages_in_order(
    store: Store, app: App, clock: ManualClock
) -> None:
    for n in range(7):
        await push_one(store, app, simple("dev-1", f"m{n}"))
    short = await push_one(store, app, simple("dev-1", "short-lived", expired_seconds=1))
    await push_one(store, app, simple("dev-2", "not mine"))
    hello_at = clock.now_ms()
    user, first = await store.device_online("app1", "dev-1", "android", page_size=3)
    assert user is None
    assert [m.title for m in first] == ["m0", "m1", "m2"]
    _, second = await store.pending_page("app1", "dev-1", after_seq=first[-1].seq, limit=3)
    assert [m.title for m in second] == ["m3", "m4", "m5"]
    _, upto = await store.pending_page(
        "app1", "dev-1", after_seq=second[-1].seq, limit=9, upto_seq=short.seq
    )
    assert [m.title for m in upto] == ["m6", "short-lived"]
    clock.advance(1_000)  # expired at send time: never again
    assert await page_ids(store, app, "dev-1", after_seq=second[-1].seq) == ["m6"]
    device = await store.get_device("app1", "dev-1")
    assert device is not None and (device.platform, device.last_seen) == ("android", hello_at)
    clock.advance(5)
    await store.device_offline("app1", "dev-1")
    device = await store.get_device("app1", "dev-1")
    assert device is not None and device.last_seen == clock.now_ms()


async def test_acks_are_counted_once_and_only_for_the_device(
    store: Store, app: App, day_start: int
) -> None:
    a = await push_one(store, app, simple("dev-1", "a"))
    b = await push_one(store, app, simple("dev-1", "b"))
    other = await push_one(store, app, simple("dev-2", "other"))
    assert await ack(store, app, "dev-1", [a.message_id, other.message_id, "junk"]) == 1
    assert await ack(store, app, "dev-1", [a.message_id, b.message_id]) == 1
    assert await page_ids(store, app, "dev-1") == []
    assert await page_ids(store, app, "dev-2") == ["other"]
    found = await store.get_message("app1", a.message_id)
    assert found is not None
    message, (delivery,) = found
    assert message.status == delivery.status == 2
    assert delivery.acked_at == delivery.sent_at == message.modified_at
    stats = await store.push_stats("app1", day_start)
    assert (stats.pushes, stats.ackable, stats.acked) == (3, 3, 2)


async def test_an_acked_id_with_a_newline_acks_nothing_of_another_device(
    store: Store, app: App
) -> None:
    # A device may send any string as an ID. Lists of IDs travel joined by
    # newlines to PostgreSQL: "junk\n<id>" must not shift the pairs of the same
    # batch so that another device's delivery is acked.
    mine = await push_one(store, app, simple("dev-2", "mine"))
    theirs = await push_one(store, app, simple("dev-2", "theirs"))
    done = trio.Event()
    counts: list[int] = []

    def recorded(_: Sequence[str], count: int, error: BaseException | None) -> None:
        assert error is None, error
        counts.append(count)
        if len(counts) == 2:
            done.set()

    store.queue_ack_nowait(app.app_id, "dev-1", [f"junk\n{theirs.message_id}"], recorded)
    store.queue_ack_nowait(app.app_id, "dev-2", [mine.message_id], recorded)
    with trio.fail_after(SAFETY_NET):
        await done.wait()
    assert sorted(counts) == [0, 1]
    assert await page_ids(store, app, "dev-2") == ["theirs"]


async def test_sent_marks_are_kept_first_write_wins(
    store: Store, app: App, clock: ManualClock
) -> None:
    message = await push_one(store, app, simple("dev-1"))
    sent_at = clock.now_ms()
    store.queue_sent_nowait("app1", "dev-1", [message.message_id])
    clock.advance(10)
    store.queue_sent_nowait("app1", "dev-1", [message.message_id])
    # A read after the marks sees them (they are written before it).
    found = await store.get_message("app1", message.message_id)
    assert found is not None and found[1][0].sent_at == sent_at


async def test_user_messages_follow_binds(store: Store, app: App) -> None:
    waiting = await push_one(store, app, simple("user-1", "for user 1"))
    assert waiting.status == 1  # NoBindInfo
    upto = await store.bind("app1", "dev-1", "user-1")
    assert upto == waiting.seq
    user, page = await store.pending_page(
        "app1", "dev-1", after_seq=0, limit=10, user_id="user-1", upto_seq=upto
    )
    assert user == "user-1" and [m.message_id for m in page] == [waiting.message_id]
    found = await store.get_message("app1", waiting.message_id)
    assert found is not None and found[0].status == 0
    (live,) = await store.insert_messages(app, [simple("user-1", "live")])
    assert live.device_ids == ("dev-1",)
    assert [d.device_id for d in await store.user_devices("app1", "user-1")] == ["dev-1"]
    # Bound elsewhere: the old user's undelivered copies go, messages back to NoBindInfo.
    assert await store.bind("app1", "dev-1", "user-2") is None
    assert await page_ids(store, app, "dev-1") == []
    found = await store.get_message("app1", waiting.message_id)
    assert found is not None and found[0].status == 1 and found[1] == []
    assert await store.unbind("app1", "dev-1") == "user-2"
    assert await store.unbind("app1", "dev-1") is None
    device = await store.get_device("app1", "dev-1")
    assert device is not None and device.user_id is None


async def test_a_user_message_stays_pending_while_another_device_has_it(
    store: Store, app: App
) -> None:
    await store.bind("app1", "dev-a", "user-1")
    await store.bind("app1", "dev-b", "user-1")
    (outcome,) = await store.insert_messages(app, [simple("user-1")])
    assert outcome.device_ids == ("dev-a", "dev-b")
    await store.unbind("app1", "dev-a")
    found = await store.get_message("app1", outcome.message.message_id)
    assert found is not None and found[0].status == 0
    assert [d.device_id for d in found[1]] == ["dev-b"]


async def test_broadcasts_open_once_per_device(store: Store, app: App) -> None:
    (outcome,) = await store.insert_messages(
        app, [NewMessage("broadcast", "android", "", "news", "all", platform="android")]
    )
    message = outcome.message
    opened = await store.open_broadcast(
        "app1", message.seq, [("dev-1", "android"), ("dev-ios", "ios")]
    )
    assert opened == ["dev-1"]
    assert await store.open_broadcast("app1", message.seq, [("dev-1", "android")]) == []
    _, page = await store.device_online("app1", "dev-2", "android", page_size=10)
    assert [m.message_id for m in page] == [message.message_id]
    _, page = await store.device_online("app1", "dev-2", "android", page_size=10)
    assert [m.message_id for m in page] == [message.message_id]  # once: still the one
    assert await ack(store, app, "dev-2", [message.message_id]) == 1
    _, page = await store.device_online("app1", "dev-2", "android", page_size=10)
    assert page == []
    stats = await store.broadcast_stats("app1", message.message_id)
    assert stats is not None and (stats.targeted, stats.delivered, stats.acked) == (2, 1, 1)
    assert await store.list_messages("app1", before_seq=None, limit=10) == []


async def test_the_list_pages_newest_first_and_purge_takes_old_rows(
    store: Store, app: App, clock: ManualClock
) -> None:
    old = await push_one(store, app, simple("dev-1", "old"))
    clock.advance(1_000)
    newer = [await push_one(store, app, simple("dev-1", f"n{n}")) for n in range(3)]
    await store.insert_messages(
        app, [NewMessage("multiple", "android", "dev-9", "m", "c", msg_key="mk")]
    )
    first = await store.list_messages("app1", before_seq=None, limit=2)
    assert [m.title for m in first] == ["n2", "n1"]
    rest = await store.list_messages("app1", before_seq=first[-1].seq, limit=10)
    assert [m.title for m in rest] == ["n0", "old"]
    assert await store.search_message("app1", "dev-9", "mk") is not None
    assert await store.purge_before(old.created_at + 1, 10) == (1, 1)
    assert await store.purge_before(old.created_at + 1, 10) == (0, 0)
    assert await store.get_message("app1", old.message_id) is None
    assert await store.get_message("app1", newer[0].message_id) is not None


async def test_verification_and_revocation(store: Store, clock: ManualClock) -> None:
    app = await store.upsert_app(app_id="v", name="v", api_key="kv", secret="s", verify=True)
    waiting = await push_one(store, app, simple("dev-1"))
    assert waiting.status == -1 and waiting.verification == "pending"
    assert await page_ids(store, app, "dev-1") == []
    approved = await store.verify("v", waiting.message_id, True)
    assert approved is not None and approved.device_ids == ("dev-1",)
    assert approved.message.status == 0 and approved.message.verification == "approved"
    with pytest.raises(NotWaitingForVerify):
        await store.verify("v", waiting.message_id, False)
    assert await store.verify("v", "no-such-id", True) is None
    revoked = await store.revoke("v", waiting.message_id)
    assert revoked is not None and revoked[0].revoked and revoked[1] == ["dev-1"]
    again = await store.revoke("v", waiting.message_id)
    assert again is not None and again[1] == []
    assert await page_ids(store, app, "dev-1") == []
    rejected = await push_one(store, app, simple("dev-1"))
    outcome = await store.verify("v", rejected.message_id, False)
    assert outcome is not None and outcome.message.verification == "rejected"
    late = await push_one(store, app, simple("dev-1", expired_seconds=1))
    clock.advance(1_000)
    with pytest.raises(NotWaitingForVerify, match="expired"):
        await store.verify("v", late.message_id, True)


async def test_templates(store: Store, app: App) -> None:
    template, new = await store.put_template("app1", "t1", "Hi #name#", "body\x00")
    assert new and template.title == "Hi #name#"
    _, new = await store.put_template("app1", "t1", "Hello #name#", "body")
    assert not new
    got = await store.get_template("app1", "t1")
    assert got is not None and (got.title, got.content) == ("Hello #name#", "body")
    assert await store.get_template("app2", "t1") is None
    assert await store.delete_template("app1", "t1")
    assert not await store.delete_template("app1", "t1")


async def test_day_counts_of_concurrent_pushes_count_what_was_stored(
    store: Store, app: App, day_start: int
) -> None:
    """Pushes in flight together (one group commit, or a few) are counted once each;
    one that fails (a msg_key conflict) is not counted; acks of several devices
    at once are counted per message."""
    await push_one(store, app, simple("dev-0", msg_key="taken"))
    stored: list[str] = []
    refused: list[BaseException] = []

    async def push(k: int) -> None:
        (outcome,) = await store.insert_messages(app, [simple(f"dev-{k}")])
        stored.append(outcome.message.message_id)

    async def conflict() -> None:
        try:
            await store.insert_messages(app, [simple("dev-0", "other", msg_key="taken")])
        except MsgKeyConflict as exc:
            refused.append(exc)

    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            for k in range(1, 41):
                nursery.start_soon(push, k)
            nursery.start_soon(conflict)
    assert len(stored) == 40 and len(refused) == 1
    stats = await store.push_stats("app1", day_start)
    assert (stats.pushes, stats.ackable, stats.acked) == (41, 41, 0)

    by_device = {
        m.target_id: m.message_id
        for m in [
            found[0] for found in [await store.get_message("app1", i) for i in stored] if found
        ]
    }
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            for k in range(1, 21):
                nursery.start_soon(ack, store, app, f"dev-{k}", [by_device[f"dev-{k}"]])
    stats = await store.push_stats("app1", day_start)
    assert (stats.pushes, stats.ackable, stats.acked) == (41, 41, 20)

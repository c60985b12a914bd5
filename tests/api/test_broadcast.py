"""Broadcasts: every device of the app online or connecting before expiry, once each."""

from __future__ import annotations

from typing import Any

from gateway.clock import ManualClock
from protocol import Ack
from tests.api import api_error, call, pushes, wait_for_answer
from tests.harness import (
    OTHER_APP,
    RunningGateway,
    message_details,
    push_simple,
    receive_nothing,
)


async def broadcast(gw: RunningGateway, **fields: Any) -> dict[str, Any]:
    async with gw.http() as client:
        return await call(
            client, "POST", "/v1/push/broadcast", {"title": "News", "content": "Hi all"} | fields
        )


async def stats(gw: RunningGateway, message_id: str, **expected: Any) -> dict[str, Any]:
    async with gw.http() as client:
        return await wait_for_answer(client, f"/v1/broadcasts/{message_id}", expected)


async def test_online_then_late_devices_once_each_until_expiry(
    gw: RunningGateway, clock: ManualClock
) -> None:
    online = {f"a-{i}": (await gw.connect(f"a-{i}"))[0] for i in range(4)}
    online["i-0"] = (await gw.connect("i-0", platform="ios"))[0]
    answer = await broadcast(gw, expired_seconds=60)
    assert set(answer) == {"message_id", "msg_key"}
    message_id = answer["message_id"]
    for device, conn in online.items():
        (frame,) = await pushes(conn, 1)
        assert (frame.id, frame.push_type, frame.title) == (message_id, "broadcast", "News")
        if device != "i-0":
            await conn.send_frame(Ack(ids=(frame.id,)))
    counts = await stats(gw, message_id, acked=4, delivered=5)
    assert counts == {
        "message_id": message_id,
        "targeted": 5,
        "delivered": 5,
        "acked": 4,
        "expires_at": "2026-11-18T11:07:40.000Z",
    }
    # A device that connects before expiry (first time ever seen) gets it too.
    clock.advance(30_000)
    late, _ = await gw.connect("late", transport="tcp")
    (frame,) = await pushes(late, 1)
    assert frame.id == message_id
    await stats(gw, message_id, targeted=6, delivered=6, acked=4)
    # Acked devices never get it again; an unacked one gets it on every reconnect.
    for conn in [*online.values(), late]:
        await conn.aclose()
    again, _ = await gw.connect("a-0")
    await receive_nothing(again)
    await again.aclose()
    unacked, _ = await gw.connect("i-0", platform="ios")
    (frame,) = await pushes(unacked, 1)
    assert frame.id == message_id
    await unacked.send_frame(Ack(ids=(frame.id,)))
    await stats(gw, message_id, targeted=6, acked=5)
    await unacked.aclose()
    # After expiry nobody new gets it.
    clock.advance(30_000)
    after, _ = await gw.connect("after-expiry")
    await receive_nothing(after)
    await after.aclose()
    await stats(gw, message_id, targeted=6, delivered=6, acked=5)
    async with gw.http() as client:
        details = await message_details(client, message_id)
    assert details["push_type"] == "broadcast"
    assert [d["device_id"] for d in details["deliveries"]] == [  # type: ignore[union-attr]
        "a-0",
        "a-1",
        "a-2",
        "a-3",
        "i-0",
        "late",
    ]


async def test_platform_limits_the_broadcast(gw: RunningGateway) -> None:
    android, _ = await gw.connect("p-android")
    ios, _ = await gw.connect("p-ios", platform="ios")
    answer = await broadcast(gw, platform="ios")
    (frame,) = await pushes(ios, 1)
    assert frame.id == answer["message_id"]
    await receive_nothing(android)
    late_android, _ = await gw.connect("p-android-2")
    late_ios, _ = await gw.connect("p-ios-2", transport="tcp", platform="ios")
    (frame,) = await pushes(late_ios, 1)
    assert frame.id == answer["message_id"]
    await receive_nothing(late_android)
    counts = await stats(gw, answer["message_id"], targeted=2, delivered=2)
    assert counts["acked"] == 0
    for conn in (android, ios, late_android, late_ios):
        await conn.aclose()


async def test_backlog_holds_broadcasts_in_creation_order(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        first = await push_simple(client, "o-dev", title="first")
        clock.advance(1)
        middle = await broadcast(gw)
        clock.advance(1)
        last = await push_simple(client, "o-dev", title="last")
    conn, _ = await gw.connect("o-dev")
    frames = await pushes(conn, 3)
    assert [f.id for f in frames] == [
        first["message_id"],
        middle["message_id"],
        last["message_id"],
    ]
    await receive_nothing(conn)
    await conn.aclose()


async def test_broadcasts_stay_inside_their_app(gw: RunningGateway) -> None:
    theirs, _ = await gw.connect("shared-id", app=OTHER_APP)
    answer = await broadcast(gw)
    mine, _ = await gw.connect("shared-id")
    (frame,) = await pushes(mine, 1)
    assert frame.id == answer["message_id"]
    await receive_nothing(theirs)
    async with gw.http(OTHER_APP) as other:
        error = await api_error(other, "GET", f"/v1/broadcasts/{answer['message_id']}", None, 404)
        assert error["code"] == "not_found"
    async with gw.http() as client:
        simple = await push_simple(client, "someone")
        await api_error(client, "GET", f"/v1/broadcasts/{simple['message_id']}", None, 404)
        await api_error(client, "GET", "/v1/broadcasts/no-such-id", None, 404)
    await theirs.aclose()
    await mine.aclose()


async def test_a_repeated_broadcast_reaches_nobody_twice(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("r-dev")
    first = await broadcast(gw, msg_key="weekly")
    (frame,) = await pushes(conn, 1)
    again = await broadcast(gw, msg_key="weekly")
    assert again == {**first, "duplicate": True}
    await receive_nothing(conn)
    await conn.send_frame(Ack(ids=(frame.id,)))
    await stats(gw, first["message_id"], targeted=1, acked=1)
    await conn.aclose()

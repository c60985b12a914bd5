"""Delivery end to end: real sockets to a gateway on free ports, real SQLite file."""

from __future__ import annotations

import httpx
import pytest
import trio

from client_sim.transport import DeviceConnection
from gateway.clock import ManualClock
from protocol import (
    Ack,
    Bind,
    Bound,
    Error,
    Ping,
    Pong,
    Push,
    Unbind,
    Unbound,
    bind_signature,
)
from tests.harness import (
    APP,
    RunningGateway,
    message_details,
    push_simple,
    receive,
    receive_nothing,
    wait_until,
)
from tests.raw_device import RawTcpDevice

TRANSPORTS = ["ws", "tcp"]


async def sent_at(client: httpx.AsyncClient, message_id: object) -> object:
    (delivery,) = (await message_details(client, message_id))["deliveries"]  # type: ignore[misc]
    return delivery["sent_at"]


async def round_trip(conn: DeviceConnection) -> None:
    """A ping answered: everything queued before it had its flusher turn."""
    await conn.send_frame(Ping())
    assert isinstance(await receive(conn), Pong)


async def wait_status(gw: RunningGateway, message_id: object, status: int) -> dict[str, object]:
    async with gw.http() as client:

        async def shown() -> dict[str, object] | None:
            details = await message_details(client, message_id)
            return details if details["status"] == status else None

        return await wait_until(shown, f"status {status} of {message_id}")


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_online_device_receives_and_acks(gw: RunningGateway, transport: str) -> None:
    conn, _ = await gw.connect("dev-1", transport=transport)
    async with gw.http() as client:
        answer = await push_simple(client, "dev-1", title="Hello", content="World", ext={"k": "v"})
        assert answer["status"] == 0
        frame = await receive(conn)
        assert isinstance(frame, Push)
        assert (frame.id, frame.title, frame.content, dict(frame.ext)) == (
            answer["message_id"],
            "Hello",
            "World",
            {"k": "v"},
        )
        assert frame.msg_key == answer["msg_key"]
        assert frame.push_type == "simple"
        assert frame.expires - frame.created == 259_200 * 1000
        await conn.send_frame(Ack(ids=(frame.id,)))
        details = await wait_status(gw, frame.id, 2)
        assert details["status_name"] == "Acked"
        deliveries = details["deliveries"]
        assert isinstance(deliveries, list)
        assert [(d["device_id"], d["status"]) for d in deliveries] == [("dev-1", 2)]
    await conn.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_offline_backlog_arrives_in_creation_order(
    gw: RunningGateway, clock: ManualClock, transport: str
) -> None:
    async with gw.http() as client:
        ids = []
        for i in range(20):
            clock.advance(1)
            ids.append((await push_simple(client, "dev-2", title=f"m{i}"))["message_id"])
    conn, _ = await gw.connect("dev-2", transport=transport)
    got = [await receive(conn) for _ in ids]
    assert [f.id for f in got if isinstance(f, Push)] == ids
    await receive_nothing(conn)
    await conn.aclose()


async def test_unacked_messages_are_redelivered_and_acked_ones_are_not(gw: RunningGateway) -> None:
    async with gw.http() as client:
        first = (await push_simple(client, "dev-3", title="one"))["message_id"]
        second = (await push_simple(client, "dev-3", title="two"))["message_id"]
    conn, _ = await gw.connect("dev-3")
    frames = [await receive(conn), await receive(conn)]
    assert [f.id for f in frames if isinstance(f, Push)] == [first, second]
    await conn.send_frame(Ack(ids=(str(first),)))
    await wait_status(gw, first, 2)
    await conn.aclose()
    # Reconnect: only the unacked one comes back.
    conn, _ = await gw.connect("dev-3")
    frame = await receive(conn)
    assert isinstance(frame, Push) and frame.id == second
    await receive_nothing(conn)
    await conn.aclose()


async def test_expired_message_is_never_sent(gw: RunningGateway, clock: ManualClock) -> None:
    async with gw.http() as client:
        expired = (await push_simple(client, "dev-4", title="old", expired_seconds=60))[
            "message_id"
        ]
        clock.advance(30_000)
        alive = (await push_simple(client, "dev-4", title="new", expired_seconds=60))["message_id"]
        clock.advance(31_000)  # the first is past its expiry, the second is not
    conn, _ = await gw.connect("dev-4")
    frame = await receive(conn)
    assert isinstance(frame, Push) and frame.id == alive and frame.id != expired
    await receive_nothing(conn)
    await conn.aclose()


async def test_expiry_is_checked_again_at_send_time(gw: RunningGateway, clock: ManualClock) -> None:
    """A message that expires while queued in a live connection's outbox is never written."""
    sloth = await RawTcpDevice.connect(gw.tcp_url, "dev-4b")  # says hello, then stops reading
    bystander, _ = await gw.connect("dev-4b-bystander")
    async with gw.http() as client:
        # Fill the socket until a message stays in the outbox (written to no socket).
        for n in range(2000):
            filler = await push_simple(client, "dev-4b", title=f"f{n}", content="x" * 3000)
            await round_trip(bystander)  # the flusher has had its turn since
            if await sent_at(client, filler["message_id"]) is None:
                # Still unwritten after one more flusher turn: the socket is full
                # (not a sent mark that was on its way to the store).
                await round_trip(bystander)
                if await sent_at(client, filler["message_id"]) is None:
                    break
        else:
            raise AssertionError("the socket never filled up")
        doomed = await push_simple(client, "dev-4b", title="doomed", expired_seconds=1)
        await round_trip(bystander)
        assert await sent_at(client, doomed["message_id"]) is None  # queued, not written
        clock.advance(2_000)  # it expires in the outbox
        last = await push_simple(client, "dev-4b", title="last")
        titles = [push.title for push in await sloth.read_until(str(last["message_id"]))]
    assert "doomed" not in titles
    assert titles[-2:] == [f"f{n}", "last"]
    await sloth.aclose()
    await bystander.aclose()


async def test_no_bind_info_then_bind_by_frame_delivers(gw: RunningGateway) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "user-1", delivery_type="user", title="for user")
        assert answer["status"] == 1
        details = await message_details(client, answer["message_id"])
        assert details["status_name"] == "NoBindInfo"
        assert details["deliveries"] == []
        conn, _ = await gw.connect("dev-5")
        await receive_nothing(conn)
        sig = bind_signature(APP.secret, APP.app_id, "dev-5", "user-1")
        await conn.send_frame(Bind(user="user-1", sig=sig))
        bound = await receive(conn)
        assert isinstance(bound, Bound) and bound.user == "user-1"
        frame = await receive(conn)
        assert isinstance(frame, Push) and frame.id == answer["message_id"]
        details = await message_details(client, answer["message_id"])
        assert details["status"] == 0
        await conn.send_frame(Ack(ids=(frame.id,)))
        await wait_status(gw, frame.id, 2)
        devices = (await client.get("/v1/users/user-1/devices")).json()["items"]
        assert [d["device_id"] for d in devices] == ["dev-5"]
    await conn.aclose()


async def test_bind_with_a_bad_signature_is_refused(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("dev-6")
    await conn.send_frame(Bind(user="user-2", sig="00" * 32))
    frame = await receive(conn)
    assert isinstance(frame, Error) and frame.code == "bad_signature"
    async with gw.http() as client:
        device = (await client.get("/v1/devices/dev-6")).json()
        assert device["user_id"] is None
    await conn.aclose()


async def test_bind_by_api_delivers_waiting_user_messages(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("dev-7")
    async with gw.http() as client:
        answer = await push_simple(client, "user-3", delivery_type="user")
        assert answer["status"] == 1
        response = await client.post(
            "/v1/bindings", json={"user_id": "user-3", "device_id": "dev-7"}
        )
        assert response.status_code == 200
        frame = await receive(conn)
        assert isinstance(frame, Push) and frame.id == answer["message_id"]
        device = (await client.get("/v1/devices/dev-7")).json()
        assert device == {
            "device_id": "dev-7",
            "platform": "android",
            "online": True,
            "last_seen": device["last_seen"],
            "user_id": "user-3",
        }  # no vendor registration: no vendor fields (CONTRACT §6)
    await conn.aclose()


async def test_user_push_fans_out_to_every_bound_device(gw: RunningGateway) -> None:
    async with gw.http() as client:
        for device in ("dev-a", "dev-b"):
            await client.post("/v1/bindings", json={"user_id": "user-4", "device_id": device})
        conn_a, _ = await gw.connect("dev-a")
        conn_b, _ = await gw.connect("dev-b", platform="ios")
        answer = await push_simple(client, "user-4", delivery_type="user")
        assert answer["status"] == 0
        frame_a, frame_b = await receive(conn_a), await receive(conn_b)
        assert isinstance(frame_a, Push) and isinstance(frame_b, Push)
        assert frame_a.id == frame_b.id == answer["message_id"]
        await conn_b.send_frame(Ack(ids=(frame_b.id,)))
        details = await wait_status(gw, frame_b.id, 2)  # any ack makes the message 2
        statuses = {d["device_id"]: d["status"] for d in details["deliveries"]}  # type: ignore[union-attr]
        assert statuses == {"dev-a": 0, "dev-b": 2}
    await conn_a.aclose()
    await conn_b.aclose()


async def test_ack_of_another_devices_message_changes_nothing(gw: RunningGateway) -> None:
    async with gw.http() as client:
        theirs = (await push_simple(client, "dev-owner"))["message_id"]
        conn, _ = await gw.connect("dev-intruder")
        await conn.send_frame(Ack(ids=(str(theirs), "no-such-id")))
        await conn.send_frame(Ack(ids=()))
        await receive_nothing(conn)  # the acks were handled; the read below follows them
        details = await message_details(client, theirs)
        assert details["status"] == 0
        assert [d["status"] for d in details["deliveries"]] == [0]  # type: ignore[union-attr]
    await conn.aclose()


async def test_unbind_drops_pending_copies_of_the_users_messages(gw: RunningGateway) -> None:
    async with gw.http() as client:
        await client.post("/v1/bindings", json={"user_id": "user-5", "device_id": "dev-8"})
        answer = await push_simple(client, "user-5", delivery_type="user")
        assert answer["status"] == 0
        conn, _ = await gw.connect("dev-8")
        frame = await receive(conn)
        assert isinstance(frame, Push)
        await conn.send_frame(Unbind())
        assert isinstance(await receive(conn), Unbound)
        await conn.aclose()
        details = await message_details(client, answer["message_id"])
        assert details["deliveries"] == []
        assert details["status"] == 1  # no device left to deliver to: NoBindInfo again
        conn, _ = await gw.connect("dev-8")
        await receive_nothing(conn)  # never redelivered to the unbound device
        # Binding to another user: that user's message must not follow either.
        await client.post("/v1/bindings", json={"user_id": "user-5", "device_id": "dev-8"})
        again = await receive(conn)
        assert isinstance(again, Push) and again.id == answer["message_id"]
        await client.post("/v1/bindings", json={"user_id": "user-6", "device_id": "dev-8"})
        await conn.aclose()
        conn, _ = await gw.connect("dev-8")
        await receive_nothing(conn)
        response = await client.delete("/v1/bindings/dev-8")
        assert response.status_code == 200
        assert (await client.get("/v1/devices/dev-8")).json()["user_id"] is None
    await conn.aclose()


async def test_messages_routed_during_backlog_replay_are_not_lost(gw: RunningGateway) -> None:
    async with gw.http() as client:
        before = [(await push_simple(client, "dev-9"))["message_id"] for _ in range(50)]
        async with trio.open_nursery() as nursery:
            connected: list[object] = []

            async def connect() -> None:
                connected.append(await gw.connect("dev-9"))

            nursery.start_soon(connect)
            during = [(await push_simple(client, "dev-9"))["message_id"] for _ in range(50)]
        conn, _ = connected[0]  # type: ignore[misc]
        got: list[str] = []
        while len(set(got)) < 100:
            frame = await receive(conn)
            assert isinstance(frame, Push)
            got.append(frame.id)
        assert set(got) == set(before) | set(during)
        assert len(got) == len(set(got)), "a live message was sent twice during replay"
    await conn.aclose()

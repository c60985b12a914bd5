"""Verification (apps declared with --verify-app) and revocation, over real HTTP and sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.clock import ManualClock
from protocol import Ack, Bind, Bound, bind_signature
from tests.api import api_error, call, pushes, wait_for_answer
from tests.harness import (
    APP,
    OTHER_APP,
    RunningGateway,
    message_details,
    push_simple,
    receive,
    receive_nothing,
    running_gateway,
)


@pytest.fixture
async def vgw(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningGateway]:
    """A gateway where app1 verifies its pushes (app2 does not)."""
    async with running_gateway(tmp_path / "verify.db", clock=clock, verify_apps=("app1",)) as gw:
        yield gw


async def verify(
    gw: RunningGateway, message_id: object, approve: bool, expect: int = 200
) -> dict[str, Any]:
    async with gw.http() as client:
        return await call(
            client, "POST", f"/v1/messages/{message_id}/verify", {"approve": approve}, expect=expect
        )


async def revoke(gw: RunningGateway, message_id: object, expect: int = 200) -> dict[str, Any]:
    async with gw.http() as client:
        return await call(client, "DELETE", f"/v1/messages/{message_id}", expect=expect)


async def details(gw: RunningGateway, message_id: object) -> dict[str, Any]:
    async with gw.http() as client:
        return await message_details(client, message_id)


# --- verification ------------------------------------------------------------------


async def test_approved_device_message_is_routed_now(
    vgw: RunningGateway, clock: ManualClock
) -> None:
    conn, _ = await vgw.connect("v-dev")
    async with vgw.http() as client:
        answer = await push_simple(client, "v-dev", title="needs a look")
    assert answer["status"] == -1
    await receive_nothing(conn)
    waiting = await details(vgw, answer["message_id"])
    assert (waiting["status_name"], waiting["verification"], waiting["deliveries"]) == (
        "WaitingForVerify",
        "pending",
        [],
    )
    clock.advance(5_000)
    approved = await verify(vgw, answer["message_id"], True)
    assert approved == {
        "message_id": answer["message_id"],
        "verification": "approved",
        "status": 0,
        "modified_at": "2026-11-18T11:06:45.000Z",
    }
    (frame,) = await pushes(conn, 1)
    assert (frame.id, frame.title) == (answer["message_id"], "needs a look")
    after = await details(vgw, answer["message_id"])
    assert (after["status"], after["verification"], after["modified_at"]) == (
        0,
        "approved",
        "2026-11-18T11:06:45.000Z",
    )
    assert [(d["device_id"], d["status"]) for d in after["deliveries"]] == [("v-dev", 0)]
    for approve in (True, False):
        error = (await verify(vgw, answer["message_id"], approve, 409))["error"]
        assert error["code"] == "not_waiting_for_verify"
        assert "approved" in error["message"]
    await conn.send_frame(Ack(ids=(frame.id,)))
    async with vgw.http() as client:
        await wait_for_answer(client, f"/v1/messages/{frame.id}", {"status": 2})
    await conn.aclose()


async def test_rejected_message_never_goes_anywhere(
    vgw: RunningGateway, clock: ManualClock
) -> None:
    async with vgw.http() as client:
        answer = await push_simple(client, "r-dev")
    clock.advance(1_000)
    rejected = await verify(vgw, answer["message_id"], False)
    assert (rejected["verification"], rejected["status"]) == ("rejected", -1)
    conn, _ = await vgw.connect("r-dev")
    await receive_nothing(conn)
    await conn.aclose()
    shown = await details(vgw, answer["message_id"])
    assert (shown["status"], shown["verification"], shown["deliveries"]) == (-1, "rejected", [])
    assert shown["modified_at"] == "2026-11-18T11:06:41.000Z"
    error = (await verify(vgw, answer["message_id"], True, 409))["error"]
    assert error["code"] == "not_waiting_for_verify" and "rejected" in error["message"]


async def test_approved_user_message_goes_to_bound_devices_or_waits_for_a_bind(
    vgw: RunningGateway,
) -> None:
    bound, _ = await vgw.connect("ub-dev")
    async with vgw.http() as client:
        await call(client, "POST", "/v1/bindings", {"user_id": "u-bound", "device_id": "ub-dev"})
        to_bound = await push_simple(client, "u-bound", delivery_type="user")
        to_nobody = await push_simple(client, "u-none", delivery_type="user")
    await receive_nothing(bound)
    assert (await verify(vgw, to_bound["message_id"], True))["status"] == 0
    (frame,) = await pushes(bound, 1)
    assert frame.id == to_bound["message_id"]
    assert (await verify(vgw, to_nobody["message_id"], True))["status"] == 1
    later, _ = await vgw.connect("un-dev")
    await receive_nothing(later)
    await later.send_frame(
        Bind(user="u-none", sig=bind_signature(APP.secret, "app1", "un-dev", "u-none"))
    )
    assert isinstance(await receive(later), Bound)
    (frame,) = await pushes(later, 1)
    assert frame.id == to_nobody["message_id"]
    await bound.aclose()
    await later.aclose()


async def test_broadcast_waits_for_approval_and_a_rejected_one_reaches_nobody(
    vgw: RunningGateway,
) -> None:
    online, _ = await vgw.connect("b-online")
    async with vgw.http() as client:
        approved = await call(client, "POST", "/v1/push/broadcast", {"title": "ok", "content": "c"})
        rejected = await call(client, "POST", "/v1/push/broadcast", {"title": "no", "content": "c"})
        await receive_nothing(online)
        early, _ = await vgw.connect("b-early")
        await receive_nothing(early)
        counts = await call(client, "GET", f"/v1/broadcasts/{approved['message_id']}")
        assert (counts["targeted"], counts["delivered"]) == (0, 0)
        await verify(vgw, rejected["message_id"], False)
        assert (await verify(vgw, approved["message_id"], True))["status"] == 0
        for conn in (online, early):
            (frame,) = await pushes(conn, 1)
            assert frame.id == approved["message_id"]
        late, _ = await vgw.connect("b-late")
        (frame,) = await pushes(late, 1)
        assert frame.id == approved["message_id"]
        await receive_nothing(late)
        await wait_for_answer(
            client, f"/v1/broadcasts/{approved['message_id']}", {"targeted": 3, "delivered": 3}
        )
        counts = await call(client, "GET", f"/v1/broadcasts/{rejected['message_id']}")
        assert counts["targeted"] == 0
    for conn in (online, early, late):
        await conn.aclose()


async def test_verify_errors(vgw: RunningGateway, clock: ManualClock) -> None:
    async with vgw.http() as client, vgw.http(OTHER_APP) as other:
        mine = await push_simple(client, "e-dev", expired_seconds=10)
        # Another app's message, or none at all: 404.
        error = await api_error(
            other, "POST", f"/v1/messages/{mine['message_id']}/verify", {"approve": True}, 404
        )
        assert error["code"] == "not_found"
        await api_error(client, "POST", "/v1/messages/nope/verify", {"approve": True}, 404)
        # app2 does not verify: its messages are never waiting.
        theirs = await push_simple(other, "e-dev")
        assert theirs["status"] == 0
        error = await api_error(
            other, "POST", f"/v1/messages/{theirs['message_id']}/verify", {"approve": True}, 409
        )
        assert error["code"] == "not_waiting_for_verify" and "not_required" in error["message"]
        for body in ({}, {"approve": "yes"}, {"approve": 1}):
            error = await api_error(
                client, "POST", f"/v1/messages/{mine['message_id']}/verify", body, 400
            )
            assert (error["code"], error["field"]) == ("invalid_request", "approve")
        # Approving after expiry would send nothing: refused; rejecting still works.
        clock.advance(10_000)
        error = (await verify(vgw, mine["message_id"], True, 409))["error"]
        assert error["code"] == "not_waiting_for_verify" and "expired" in error["message"]
        assert (await verify(vgw, mine["message_id"], False))["verification"] == "rejected"


# --- revocation --------------------------------------------------------------------


async def test_revoke_a_message_pending_for_an_offline_device(gw: RunningGateway) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "off-dev")
        kept = await push_simple(client, "off-dev", title="kept")
    revoked = await revoke(gw, answer["message_id"])
    assert revoked == {"message_id": answer["message_id"], "revoked": True, "stopped": 1}
    assert (await revoke(gw, answer["message_id"]))["stopped"] == 0  # idempotent
    shown = await details(gw, answer["message_id"])
    assert (shown["revoked"], shown["deliveries"]) == (True, [])
    conn, _ = await gw.connect("off-dev")
    (frame,) = await pushes(conn, 1)
    assert frame.id == kept["message_id"]
    await receive_nothing(conn)
    await conn.aclose()


async def test_revoke_a_message_sent_to_an_online_device_but_not_acked(
    gw: RunningGateway,
) -> None:
    conn, _ = await gw.connect("on-dev")
    async with gw.http() as client:
        unacked = await push_simple(client, "on-dev", title="unacked")
        acked = await push_simple(client, "on-dev", title="acked")
    frames = await pushes(conn, 2)
    await conn.send_frame(Ack(ids=(frames[1].id,)))
    async with gw.http() as client:
        await wait_for_answer(client, f"/v1/messages/{acked['message_id']}", {"status": 2})
    assert (await revoke(gw, unacked["message_id"]))["stopped"] == 1
    assert (await revoke(gw, acked["message_id"]))["stopped"] == 0  # nothing left to stop
    await conn.aclose()
    conn, _ = await gw.connect("on-dev")  # the unacked copy is not resent
    await receive_nothing(conn)
    await conn.aclose()


async def test_revoke_removes_a_copy_queued_in_a_live_session(
    tmp_path: Path, clock: ManualClock
) -> None:
    """A device that stops reading: the writer is blocked on its socket, later pushes
    wait in the session's outbox, and a revoked one is taken out of it."""
    async with running_gateway(
        tmp_path / "q.db", clock=clock, max_payload=40_000, send_timeout=60.0
    ) as gw:
        conn, _ = await gw.connect("q-dev", transport="tcp")
        body = {
            "delivery_type": "android",
            "targets": [{"target_id": "q-dev"}] * 400,  # ~12 MB: more than sockets hold
            "title": "big",
            "content": "x" * 30_000,
        }
        async with gw.http() as client:
            answer = await call(client, "POST", "/v1/push/multiple", body)
        ids = [m["message_id"] for m in answer["messages"]]
        assert (await revoke(gw, ids[-1]))["stopped"] == 1
        frames = await pushes(conn, 399)
        assert [f.id for f in frames] == ids[:-1]
        await receive_nothing(conn)
        await conn.aclose()


async def test_revoked_user_and_broadcast_messages_reach_no_later_device(
    gw: RunningGateway,
) -> None:
    online, _ = await gw.connect("rb-online")
    async with gw.http() as client:
        for_user = await push_simple(client, "ru-user", delivery_type="user")
        assert for_user["status"] == 1
        news = await call(client, "POST", "/v1/push/broadcast", {"title": "n", "content": "c"})
    await pushes(online, 1)
    assert (await revoke(gw, news["message_id"]))["stopped"] == 1
    assert (await revoke(gw, for_user["message_id"]))["stopped"] == 0
    async with gw.http() as client:
        counts = await call(client, "GET", f"/v1/broadcasts/{news['message_id']}")
        assert counts["targeted"] == 0
        await call(client, "POST", "/v1/bindings", {"user_id": "ru-user", "device_id": "rb-new"})
    await online.aclose()
    for device in ("rb-online", "rb-new"):
        conn, _ = await gw.connect(device)
        await receive_nothing(conn)
        await conn.aclose()


async def test_a_revoked_waiting_message_cannot_be_approved(vgw: RunningGateway) -> None:
    async with vgw.http() as client:
        answer = await push_simple(client, "w-dev")
    assert (await revoke(vgw, answer["message_id"]))["stopped"] == 0
    error = (await verify(vgw, answer["message_id"], True, 409))["error"]
    assert error["code"] == "not_waiting_for_verify" and "revoked" in error["message"]
    conn, _ = await vgw.connect("w-dev")
    await receive_nothing(conn)
    await conn.aclose()


async def test_another_app_can_neither_read_verify_nor_revoke(vgw: RunningGateway) -> None:
    async with vgw.http() as client, vgw.http(OTHER_APP) as other:
        answer = await push_simple(client, "iso-dev")
        path = f"/v1/messages/{answer['message_id']}"
        assert (await api_error(other, "GET", path, None, 404))["code"] == "not_found"
        assert (await api_error(other, "DELETE", path, None, 404))["code"] == "not_found"
        await api_error(other, "POST", f"{path}/verify", {"approve": False}, 404)
        # Untouched: still waiting, and approving it delivers it.
        assert (await message_details(client, answer["message_id"]))["verification"] == "pending"
    await verify(vgw, answer["message_id"], True)
    conn, _ = await vgw.connect("iso-dev")
    (frame,) = await pushes(conn, 1)
    assert frame.id == answer["message_id"]
    await conn.aclose()

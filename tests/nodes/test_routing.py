"""Pushes, acks, roaming and broadcasts across real nodes (PostgreSQL + Redis)."""

from __future__ import annotations

from protocol import Push
from tests.harness import (
    api_client,
    connect_device,
    message_details,
    push_simple,
    receive,
    wait_until,
)

from .support import Three, ack, is_replaced, receive_push


async def test_push_on_one_node_reaches_a_device_on_another_and_its_ack_shows_on_a_third(
    three_nodes: Three,
) -> None:
    _, (a, b, c) = three_nodes
    conn, _ = await connect_device(b.ws_url, "phone-1")
    async with api_client(a.api) as on_a, api_client(c.api) as on_c:
        answer = await push_simple(on_a, "phone-1", title="cross")
        push = await receive_push(conn)
        assert push.id == answer["message_id"] and push.title == "cross"
        await ack(conn, push)

        async def acked() -> bool:
            details = await message_details(on_c, answer["message_id"])
            return details["status"] == 2

        await wait_until(acked, "the ack, seen from node C")
    await conn.aclose()


async def test_a_device_that_roams_is_replaced_on_its_old_node_and_served_on_the_new_one(
    three_nodes: Three,
) -> None:
    _, (a, b, _c) = three_nodes
    old, _ = await connect_device(a.ws_url, "roamer")
    async with api_client(a.api) as on_a:
        first = await push_simple(on_a, "roamer", title="before")
        assert (await receive_push(old)).id == first["message_id"]  # not acked: it follows
        new, _ = await connect_device(b.ws_url, "roamer")
        assert is_replaced(await receive(old))
        backlog = await receive_push(new)
        assert backlog.id == first["message_id"]
        await ack(new, backlog)
        after = await push_simple(on_a, "roamer", title="after")
        assert (await receive_push(new)).id == after["message_id"]
    await new.aclose()
    await old.aclose()


async def test_a_broadcast_reaches_the_devices_of_every_node(three_nodes: Three) -> None:
    _, (a, b, c) = three_nodes
    conns = [(await connect_device(node.ws_url, f"bc-{i}"))[0] for i, node in enumerate((a, b, c))]
    async with api_client(b.api) as on_b:
        response = await on_b.post(
            "/v1/push/broadcast", json={"title": "all", "content": "everyone"}
        )
        assert response.status_code == 200, response.text
        message_id = response.json()["message_id"]
    for conn in conns:
        push = await receive(conn)
        assert isinstance(push, Push) and push.id == message_id
        await conn.aclose()


async def test_nodes_lists_every_live_node_with_the_apps_devices_online_on_it(
    three_nodes: Three,
) -> None:
    _, (a, b, c) = three_nodes
    conns = [(await connect_device(b.ws_url, f"n-{i}"))[0] for i in range(3)]
    async with api_client(a.api) as on_a:

        async def listed() -> dict[int | None, int] | None:
            response = await on_a.get("/v1/nodes")
            assert response.status_code == 200, response.text
            found = {n["ports"].get("api"): n["online"] for n in response.json()["nodes"]}
            return found if found == expected else None

        expected = {_port(a.api): 0, _port(b.api): 3, _port(c.api): 0}
        await wait_until(listed, "the three nodes listed, node B with 3 devices")
        metrics = (await on_a.get("/metrics")).text
        assert 'node="' in metrics
        health = await on_a.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
    for conn in conns:
        await conn.aclose()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_a_bind_on_one_node_reaches_the_devices_session_on_another(
    three_nodes: Three,
) -> None:
    _, (a, b, _c) = three_nodes
    conn, _ = await connect_device(b.ws_url, "bound-1")
    async with api_client(a.api) as on_a:
        response = await on_a.post(
            "/v1/bindings", json={"user_id": "user-x", "device_id": "bound-1"}
        )
        assert response.status_code in (200, 201, 204), response.text
        answer = await push_simple(on_a, "user-x", delivery_type="user", title="to the user")
        push = await receive_push(conn)
        assert push.id == answer["message_id"]
        await ack(conn, push)
    await conn.aclose()

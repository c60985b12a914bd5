"""Pushes, acks, roaming and broadcasts across real nodes (PostgreSQL + Redis)."""

from __future__ import annotations

from tests.harness import (
    api_client,
    connect_device,
    message_details,
    push_simple,
    wait_until,
)

from .support import Nodes, ack, receive_push


async def test_push_on_one_node_reaches_a_device_on_another_and_its_ack_shows_on_a_third(
    nodes: Nodes,
) -> None:
    a, b, c = nodes.start(), nodes.start(), nodes.start()
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

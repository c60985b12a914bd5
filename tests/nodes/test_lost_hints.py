"""Lost bind, unbind and broadcast hints: the sweep of the device's node makes up for them.

Node A loses every bind, unbind and broadcast hint it should publish (the
`PUSHGATE_TEST_LOSE_HINTS` test hook: exactly what a Redis pub/sub message lost
on the way does); node B holds the devices. Only B's sweep (every 0.5 s here)
can then tell B's sessions what changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from coredis import PureToken

from gateway.cluster import LOSE_HINTS_ENV
from protocol import Push
from tests.broker.support import MACHINE_REDIS, PrivateRedis, raw_client
from tests.harness import (
    SAFETY_NET,
    ServerProcess,
    api_client,
    connect_device,
    push_simple,
    receive,
    wait_until,
)
from tests.store_pg.database import session_database

from .support import Nodes, ack, receive_push

Pair = tuple[Nodes, ServerProcess, ServerProcess]


@pytest.fixture(scope="module")
def lossy_pair(tmp_path_factory: pytest.TempPathFactory, nodes_prefix: str) -> Iterator[Pair]:
    store = session_database().fresh_url()
    prefix = f"{nodes_prefix}{uuid.uuid4().hex[:6]}:"
    running = Nodes(tmp_path_factory.mktemp("lossy"), store, MACHINE_REDIS, prefix)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(LOSE_HINTS_ENV, "bind,unbind,broadcast")
            a = running.start()
        b = running.start()
        yield running, a, b
    finally:
        running.stop_all()


async def rebound_logged(node: ServerProcess, device: str, user: str) -> bool:
    return f"event=session_rebound device={device} user={user}" in node.log()


async def test_a_lost_bind_hint_the_session_picks_up_its_new_user_at_the_next_sweep(
    lossy_pair: Pair,
) -> None:
    _, a, b = lossy_pair
    conn, _ = await connect_device(b.ws_url, "lh-bind")
    async with api_client(a.api) as on_a:
        bound = await on_a.post("/v1/bindings", json={"user_id": "lh-u1", "device_id": "lh-bind"})
        assert bound.status_code in (200, 201, 204), bound.text
        # Its deliver hint reaches B, whose session still has no user: the sweep must
        # first rebind the session, whose catch-up then brings the message.
        answer = await push_simple(on_a, "lh-u1", delivery_type="user", title="to lh-u1")
        push = await receive_push(conn)
        assert push.id == answer["message_id"] and push.title == "to lh-u1"
        await ack(conn, push)
    await wait_until(lambda: rebound_logged(b, "lh-bind", "lh-u1"), "the rebind by B's sweep")
    await conn.aclose()


async def test_a_lost_unbind_hint_the_session_drops_its_old_user_at_the_next_sweep(
    lossy_pair: Pair,
) -> None:
    _, a, b = lossy_pair
    conn, _ = await connect_device(b.ws_url, "lh-unbind")
    async with api_client(b.api) as on_b, api_client(a.api) as on_a:
        body = {"user_id": "lh-u2", "device_id": "lh-unbind"}
        assert (await on_b.post("/v1/bindings", json=body)).status_code in (200, 201, 204)
        answer = await push_simple(on_b, "lh-u2", delivery_type="user", title="before")
        push = await receive_push(conn)
        assert push.id == answer["message_id"]
        await ack(conn, push)
        gone = await on_a.delete("/v1/bindings/lh-unbind")
        assert gone.status_code in (200, 204), gone.text
        await wait_until(
            lambda: rebound_logged(b, "lh-unbind", "None"), "the session unbound by B's sweep"
        )
        # Bound again to another user through A (that hint lost too): the session
        # follows the store again, and gets the new user's message only.
        body = {"user_id": "lh-u3", "device_id": "lh-unbind"}
        assert (await on_a.post("/v1/bindings", json=body)).status_code in (200, 201, 204)
        old = await push_simple(on_a, "lh-u2", delivery_type="user", title="old user")
        new = await push_simple(on_a, "lh-u3", delivery_type="user", title="new user")
        push = await receive_push(conn)
        assert push.id == new["message_id"] != old["message_id"]
        await ack(conn, push)
    await conn.aclose()


async def test_a_lost_broadcast_hint_the_devices_get_the_broadcast_at_the_next_sweep(
    lossy_pair: Pair,
) -> None:
    _, a, b = lossy_pair
    conns = [(await connect_device(b.ws_url, f"lh-bc-{i}"))[0] for i in range(3)]
    async with api_client(a.api) as on_a:
        response = await on_a.post(
            "/v1/push/broadcast", json={"title": "all", "content": "missed hint"}
        )
        assert response.status_code == 200, response.text
        message_id = response.json()["message_id"]
    for conn in conns:
        push = await receive(conn, timeout=SAFETY_NET)
        assert isinstance(push, Push) and push.id == message_id
        await ack(conn, push)
        await conn.aclose()


async def test_lost_hints_are_made_up_for_when_the_subscription_comes_back(
    tmp_path: Path, nodes: Nodes
) -> None:
    """Sweeps a minute apart: only the resync after B's pub/sub connection is cut
    (`CLIENT KILL TYPE pubsub`, on a Redis of the test's own) can bring them."""
    redis = PrivateRedis(tmp_path)
    redis.start()
    try:
        nodes.broker = redis.url
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(LOSE_HINTS_ENV, "bind,broadcast")
            a = nodes.start(sweep="60")
        b = nodes.start(sweep="60")
        conn, _ = await connect_device(b.ws_url, "lh-resync")
        async with api_client(a.api) as on_a:
            body = {"user_id": "lh-u4", "device_id": "lh-resync"}
            assert (await on_a.post("/v1/bindings", json=body)).status_code in (200, 201, 204)
            to_user = await push_simple(on_a, "lh-u4", delivery_type="user", title="user")
            response = await on_a.post("/v1/push/broadcast", json={"title": "b", "content": "c"})
            assert response.status_code == 200, response.text
            broadcast = response.json()["message_id"]
        async with raw_client(redis.url) as admin:
            assert await admin.client_kill(type_=PureToken.PUBSUB) == 2
        got: set[str] = set()
        while got != {to_user["message_id"], broadcast}:
            push = await receive(conn)
            assert isinstance(push, Push), push
            got.add(push.id)
            await ack(conn, push)
        await conn.aclose()

        def resyncs() -> list[str]:  # logged once the resync is over
            return [line for line in b.log().splitlines() if "reason=resubscribed" in line]

        await wait_until(resyncs, "B's resync logged")
        assert resyncs()[0].endswith("rebound=1 broadcasts=1"), resyncs()
    finally:
        redis.close()

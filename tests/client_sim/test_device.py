"""Device behaviours over real sockets (WebSocket and TCP) against the fake gateway."""

from __future__ import annotations

import socket

import pytest
import trio

from client_sim import ConnectionClosed, GatewayError, HelloRejected
from protocol import Ping, bind_signature, device_token
from tests.harness import SAFETY_NET


async def test_connects_and_gets_welcome(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(platform="ios")
        await nursery.start(device.run)
        session = await gateway.wait_session()
        assert device.connected
        assert device.welcomes == 1
        assert device.session == session.name
        assert device.heartbeat == 30
        assert session.hello.platform == "ios"
        assert session.hello.token == device_token(gateway.secret, gateway.app, "dev-1")


async def test_push_is_received_and_acked_immediately(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        seen = []
        device = make_device(on_push=seen.append)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        pushes = await session.push("m1", "m2", "m3")
        await device.wait_for_pushes(3, timeout=SAFETY_NET)
        assert [r.push for r in seen] == pushes
        assert device.received["m2"].push == pushes[1]
        assert device.received["m2"].session == session.name
        await gateway.wait_for(lambda: len(session.acked_ids) == 3)
        # Immediate: one ack frame per push, in arrival order.
        assert [ack.ids for ack in session.acks] == [("m1",), ("m2",), ("m3",)]
        await device.wait_for(lambda: device.acked_ids == 3, timeout=SAFETY_NET)
        assert device.ack_frames_sent == 3


async def test_never_ack_sends_no_ack(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(ack_mode="never")
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.push("m1", "m2")
        await device.wait_for_pushes(2, timeout=SAFETY_NET)
        # A round trip after the pushes: an ack, had one been sent, came before it.
        await device.unbind()
        assert session.acks == []
        await device.ack(["m1"])
        await gateway.wait_for(lambda: session.acked_ids == ["m1"])


async def test_batched_acks_carry_several_ids(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(ack_mode="batched", ack_batch_size=5, ack_batch_interval=0.3)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.push(*(f"m{i}" for i in range(7)))
        await gateway.wait_for(lambda: len(session.acked_ids) == 7)
        # A full batch at once, the rest when the interval ends.
        assert [len(ack.ids) for ack in session.acks] == [5, 2]
        assert session.acked_ids == [f"m{i}" for i in range(7)]


async def test_delayed_ack_waits(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(ack_mode="delayed", ack_delay=0.3)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.push("m1")
        await device.wait_for_pushes(1, timeout=SAFETY_NET)
        await gateway.wait_for(lambda: session.acked_ids == ["m1"])
        received_at = device.received["m1"].received_at
        assert trio.current_time() - received_at >= 0.3


async def test_duplicate_is_counted_not_reported(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        seen = []
        device = make_device(on_push=seen.append)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.push("m1", "m1", "m2")
        await device.wait_for(
            lambda: device.unique_pushes + device.duplicates == 3, timeout=SAFETY_NET
        )
        assert sorted(device.received) == ["m1", "m2"]
        assert [r.push.id for r in seen] == ["m1", "m2"]
        assert device.duplicates == 1
        # The duplicate is acked again: the gateway resends until it sees an ack.
        await gateway.wait_for(lambda: len(session.acked_ids) == 3)
        assert session.acked_ids == ["m1", "m1", "m2"]


async def test_reconnects_after_the_gateway_drops(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(ack_mode="never")
        await nursery.start(device.run)
        first = await gateway.wait_session(1)
        await first.push("m1")
        await device.wait_for_pushes(1, timeout=SAFETY_NET)
        await first.drop()
        second = await gateway.wait_session(2)
        await device.wait_for(lambda: device.welcomes == 2 and device.connected, timeout=SAFETY_NET)
        assert device.session == second.name
        # At-least-once: the unacked message comes again on the new connection.
        await second.push("m1", "m2")
        await device.wait_for_pushes(2, timeout=SAFETY_NET)
        assert device.duplicates == 1
        assert device.received["m1"].session == first.name


@pytest.mark.parametrize("reason", ["idle_timeout", "shutdown"])
async def test_reconnects_after_other_byes(nursery, gateway, make_device, reason):
    with trio.fail_after(SAFETY_NET):
        device = make_device()
        await nursery.start(device.run)
        first = await gateway.wait_session(1)
        await first.bye(reason)
        await gateway.wait_session(2)
        await device.wait_for(lambda: device.welcomes == 2, timeout=SAFETY_NET)
        assert device.byes == [reason]


async def test_no_reconnect_after_bye_replaced(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device()
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.bye("replaced")
        await device.wait_for(lambda: device.stop_reason is not None, timeout=SAFETY_NET)
        assert device.stop_reason == "replaced"
        assert device.replaced
        assert device.byes == ["replaced"]
        assert not device.connected
        await session.ended.wait()
        assert len(gateway.sessions) == 1
        assert device.welcomes == 1


async def test_no_reconnect_when_disabled(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(reconnect=False)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.drop()
        await device.wait_for(lambda: device.stop_reason is not None, timeout=SAFETY_NET)
        assert device.stop_reason == "disconnected"
        assert device.welcomes == 1


async def test_bind_computes_the_signature_and_waits_for_bound(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device()
        await nursery.start(device.run)
        session = await gateway.wait_session()
        assert await device.bind("alice") == "alice"
        assert device.bound_user == "alice"
        bind = session.frames[-1]
        assert bind.sig == bind_signature(gateway.secret, gateway.app, "dev-1", "alice")
        await device.unbind()
        assert device.bound_user is None


async def test_bind_with_a_bad_signature_raises(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device()
        await nursery.start(device.run)
        await gateway.wait_session()
        with pytest.raises(GatewayError) as info:
            await device.bind("alice", sig="0" * 64)
        assert info.value.code == "bad_signature"
        assert device.bound_user is None


async def test_bad_token_is_rejected_without_retry(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device(token="not-the-token")
        with pytest.raises(HelloRejected) as info:
            await nursery.start(device.run)
        assert info.value.code == "auth_failed"
        assert device.stop_reason == "rejected"
        assert len(gateway.rejected) == 1
        assert gateway.sessions == []


async def test_heartbeat_pings(nursery, gateway_factory, make_device):
    with trio.fail_after(SAFETY_NET):
        gateway = await gateway_factory(heartbeat=1)
        device = make_device(url=gateway.url)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await device.wait_for(lambda: device.pongs >= 1, timeout=SAFETY_NET)
        assert device.rtt is not None
        assert device.rtt < 0.5
        assert isinstance(session.frames[0], Ping)


async def test_close_is_graceful_and_final(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        device = make_device()
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await device.close()
        assert device.stop_reason == "closed"
        assert not device.connected
        await session.ended.wait()
        if gateway.transport == "ws":
            assert session.conn.close_code == 1000
        assert len(gateway.sessions) == 1
        with pytest.raises(ConnectionClosed):
            await device.ack(["m1"])


async def test_keeps_retrying_while_nothing_listens(nursery, gateway, make_device):
    with trio.fail_after(SAFETY_NET):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            free_port = sock.getsockname()[1]
        device = make_device(url=gateway.url.replace(str(gateway.port), str(free_port)))
        # Nothing listens there: the device retries with backoff, never crashes.
        nursery.start_soon(device.run)
        await device.wait_for(lambda: device.connect_failures >= 3, timeout=SAFETY_NET)
        assert not device.connected
        await device.close()
        assert device.stop_reason == "closed"


async def test_device_over_tls(nursery, gateway_factory, make_device, certs):
    with trio.fail_after(SAFETY_NET):
        gateway = await gateway_factory(ssl_context=certs.server)
        device = make_device(url=gateway.url, ssl_context=certs.client)
        await nursery.start(device.run)
        session = await gateway.wait_session()
        await session.push("m1")
        await gateway.wait_for(lambda: session.acked_ids == ["m1"])
        await device.close()
        assert device.stop_reason == "closed"

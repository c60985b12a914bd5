"""DeviceConnection over real sockets, WebSocket and TCP, against the fake gateway."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio
from trio.testing import MockClock, wait_all_tasks_blocked
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from client_sim import (
    ConnectionClosed,
    DeviceConnection,
    HandshakeError,
    open_device_connection,
    parse_url,
)
from protocol import (
    PROTOCOL_VERSION,
    Error,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Push,
    Welcome,
    device_token,
    encode,
)
from tests.harness import SAFETY_NET

RAW_PING = b"\x81\xa1t\xa4ping"  # {"t": "ping"}, written by hand


async def connect_and_hello(gateway, device_id: str = "dev-1", **kwargs) -> DeviceConnection:
    conn = await open_device_connection(gateway.url, **kwargs)
    token = device_token(gateway.secret, gateway.app, device_id)
    await conn.send_frame(
        Hello(v=PROTOCOL_VERSION, app=gateway.app, device=device_id, platform="ios", token=token)
    )
    welcome = await conn.receive_frame()
    assert isinstance(welcome, Welcome)
    return conn


async def test_hello_gets_welcome(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        assert session.hello.device == "dev-1"
        assert session.hello.platform == "ios"
        assert conn.transport == gateway.transport
        assert not conn.closed
        await conn.aclose()
        assert conn.closed


async def test_send_raw_is_one_frame_body(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await conn.send_raw(RAW_PING)
        assert isinstance(await conn.receive_frame(), Pong)
        assert session.payloads == [RAW_PING]

        await conn.send_raw(b"\xc1junk")
        error = await conn.receive_frame()
        assert isinstance(error, Error)
        assert error.code == "malformed_frame"
        assert session.payloads[-1] == b"\xc1junk"
        with pytest.raises(ConnectionClosed):
            await conn.receive_frame()


async def test_send_frames_arrive_in_order(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await conn.send_frames([Ping(), Ping(), Ping()])
        for _ in range(3):
            assert isinstance(await conn.receive_frame(), Pong)
        assert session.payloads == [encode(Ping())] * 3
        await conn.aclose()


async def test_frames_from_the_gateway(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        pushes = await session.push("m1", "m2")
        assert [await conn.receive_frame() for _ in pushes] == pushes
        assert isinstance(pushes[0], Push)
        await conn.aclose()


async def test_gateway_close_raises_connection_closed(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await session.conn.close(4000, "go away")
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive_frame()
        expected = 4000 if gateway.transport == "ws" else None
        assert info.value.code == expected
        assert conn.close_code == expected
        if gateway.transport == "ws":
            assert info.value.reason == "go away"
        with pytest.raises(ConnectionClosed):
            await conn.send_frame(Ping())


async def test_frame_sent_with_the_close_is_still_received(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await session.conn.send_and_close(Error(code="auth_failed", message="no"), 1008, "bye")
        error = await conn.receive_frame()
        assert isinstance(error, Error)
        assert error.code == "auth_failed"
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive_frame()
        assert info.value.code == (1008 if gateway.transport == "ws" else None)


async def test_dropped_connection_raises_connection_closed(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await session.drop()
        with pytest.raises(ConnectionClosed) as info:
            await conn.receive_frame()
        assert info.value.code == (1006 if gateway.transport == "ws" else None)


async def test_frame_over_the_limit_is_a_protocol_error(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway, max_frame_size=512)
        session = await gateway.wait_session()
        await session.conn.send_payloads([b"\x80" * 600])
        with pytest.raises(ProtocolError) as info:
            await conn.receive_frame()
        assert info.value.code == "frame_too_large"
        assert conn.closed
        await session.ended.wait()
        if gateway.transport == "ws":
            assert session.conn.close_code == 1009


async def test_local_address_sets_the_source_ip(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway, local_address="127.0.0.5")
        session = await gateway.wait_session()
        assert session.peer == "127.0.0.5"
        await conn.aclose()


@pytest.mark.parametrize("transport", ["ws"])
async def test_websocket_ping_gets_pong(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await session.conn.ping(b"are you there")
        await session.push("m1")
        assert isinstance(await conn.receive_frame(), Push)
        await gateway.wait_for(lambda: session.conn.pongs == [b"are you there"])
        await conn.aclose()


@pytest.mark.parametrize("transport", ["ws"])
async def test_websocket_close_handshake(gateway, autojump_clock: MockClock):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway, close_timeout=3)
        session = await gateway.wait_session()
        started = trio.current_time()
        await conn.aclose()
        # The gateway answered our close, so we did not wait for the timeout.
        assert trio.current_time() - started < 3
        await session.ended.wait()
        assert session.conn.close_code == 1000
        assert conn.close_code == 1000


@pytest.mark.parametrize("transport", ["ws"])
async def test_websocket_close_while_another_task_reads(gateway, autojump_clock: MockClock):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway, close_timeout=3)
        session = await gateway.wait_session()
        closed: list[ConnectionClosed] = []

        async def reader() -> None:
            with pytest.raises(ConnectionClosed) as info:
                await conn.receive_frame()
            closed.append(info.value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await wait_all_tasks_blocked()  # the reader waits in receive_frame
            started = trio.current_time()
            await conn.aclose()
            assert trio.current_time() - started < 3
        assert closed[0].code == 1000
        await session.ended.wait()
        assert session.conn.close_code == 1000


@pytest.mark.parametrize("transport", ["ws"])
async def test_websocket_text_message_is_refused(gateway):
    with trio.fail_after(SAFETY_NET):
        conn = await connect_and_hello(gateway)
        session = await gateway.wait_session()
        await session.conn.send_text("hi")
        with pytest.raises(ProtocolError) as info:
            await conn.receive_frame()
        assert info.value.code == "text_not_allowed"
        await session.ended.wait()
        assert session.conn.close_code == 1003


@pytest.mark.parametrize("transport", ["ws"])
async def test_websocket_wrong_path_is_a_handshake_error(gateway):
    with trio.fail_after(SAFETY_NET):
        with pytest.raises(HandshakeError) as info:
            await open_device_connection(f"ws://127.0.0.1:{gateway.port}/nope")
        assert info.value.status_code == 404


async def test_connection_refused_is_an_os_error():
    with trio.fail_after(SAFETY_NET):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(OSError, match="connect"):
            await open_device_connection(f"tcp://127.0.0.1:{port}")


async def test_tls(gateway_factory, certs):
    with trio.fail_after(SAFETY_NET):
        gateway = await gateway_factory(ssl_context=certs.server)
        assert gateway.url.startswith(("wss://", "tls://"))
        conn = await connect_and_hello(gateway, ssl_context=certs.client)
        session = await gateway.wait_session()
        await session.push("m1")
        assert isinstance(await conn.receive_frame(), Push)
        await conn.aclose()
        await session.ended.wait()


async def test_tls_with_an_untrusted_certificate_fails(gateway_factory, certs):
    with trio.fail_after(SAFETY_NET):
        gateway = await gateway_factory(ssl_context=certs.server)
        with pytest.raises(ConnectionClosed, match="TLS handshake failed"):
            await open_device_connection(gateway.url)  # default context: not trusted


async def serve_silent(nursery, *, websocket: bool) -> str:
    """A server that accepts (and the WebSocket upgrade) and then never reads again."""

    async def handler(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        while websocket:
            ws.receive_data(await stream.receive_some(65_536))
            if any(isinstance(event, Request) for event in ws.events()):
                await stream.send_all(ws.send(AcceptConnection()))
                break
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return f"ws://127.0.0.1:{port}/v1/connect" if websocket else f"tcp://127.0.0.1:{port}"


async def test_write_timeout_closes_the_connection(nursery, autojump_clock: MockClock):
    with trio.fail_after(SAFETY_NET):
        url = await serve_silent(nursery, websocket=False)
        conn = await open_device_connection(url, write_timeout=0.3)

        async def fill_the_socket_buffers() -> None:
            for _ in range(10_000):
                await conn.send_raw(b"x" * 60_000)

        with pytest.raises(ConnectionClosed, match="write timed out"):
            await fill_the_socket_buffers()
        assert conn.closed
        with pytest.raises(ConnectionClosed):
            await conn.receive_frame()


async def test_websocket_close_waits_for_the_answer_only_so_long(
    nursery, autojump_clock: MockClock
):
    with trio.fail_after(SAFETY_NET):
        url = await serve_silent(nursery, websocket=True)
        conn = await open_device_connection(url, close_timeout=0.3)
        started = trio.current_time()
        await conn.aclose()
        assert 0.3 <= trio.current_time() - started < 1
        assert conn.close_code == 1000


def test_parse_url():
    ws = parse_url("ws://example.com:8081/v1/connect?x=1")
    assert (ws.host, ws.port, ws.websocket, ws.tls, ws.target) == (
        "example.com",
        8081,
        True,
        False,
        "/v1/connect?x=1",
    )
    assert parse_url("wss://example.com/v1/connect").port == 443
    tcp = parse_url("tls://[::1]:8082")
    assert (tcp.host, tcp.port, tcp.websocket, tcp.tls) == ("::1", 8082, False, True)
    for bad in ("http://x:1", "tcp://x", "tcp://:80"):
        with pytest.raises(ValueError, match=r"."):
            parse_url(bad)

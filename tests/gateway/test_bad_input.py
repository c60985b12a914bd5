"""Bad input from devices: an `error` frame, then close; nothing else is affected."""

from __future__ import annotations

import gc

import msgpack
import pytest
import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from protocol import Error, Hello, Ping, Pong, device_token
from tests.harness import APP, OTHER_APP, RunningGateway, hello_for, receive

TRANSPORTS = ["ws", "tcp"]


async def expect_error_then_close(conn: object, code: str) -> Error:
    frame = await receive(conn)  # type: ignore[arg-type]
    assert isinstance(frame, Error), frame
    assert frame.code == code, frame
    assert frame.message
    with trio.fail_after(5), pytest.raises(ConnectionClosed):
        await conn.receive_frame()  # type: ignore[attr-defined]
    await conn.aclose()  # type: ignore[attr-defined]
    return frame


async def assert_gateway_still_serves(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("bystander")
    await conn.send_frame(Ping())
    assert isinstance(await receive(conn), Pong)
    await conn.aclose()


def hello(**changes: object) -> Hello:
    fields = {
        "v": 1,
        "app": APP.app_id,
        "device": "dev-x",
        "platform": "android",
        "token": device_token(APP.secret, APP.app_id, "dev-x"),
    }
    fields.update(changes)
    return Hello(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (hello(token="0" * 64), "auth_failed"),
        (hello(token=""), "auth_failed"),
        (hello(app="no-such-app"), "auth_failed"),
        # A valid token of another app does not open this app.
        (hello(token=device_token(OTHER_APP.secret, APP.app_id, "dev-x")), "auth_failed"),
        (hello(v=2), "bad_hello"),
        (hello(platform="windows"), "bad_hello"),
        (hello(device="has space"), "bad_hello"),
        (Ping(), "hello_required"),
    ],
)
async def test_bad_hello_is_refused(
    gw: RunningGateway, transport: str, frame: object, code: str
) -> None:
    conn = await open_device_connection(gw.url(transport))
    await conn.send_frame(frame)  # type: ignore[arg-type]
    await expect_error_then_close(conn, code)
    await assert_gateway_still_serves(gw)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\xc1\xc1\xc1", "malformed_frame"),
        (b"\x92\x01", "malformed_frame"),  # truncated array
        (msgpack.packb([1, 2, 3]), "malformed_frame"),
        (msgpack.packb({"t": "teleport"}), "unknown_frame_type"),
        (msgpack.packb({"t": "ack", "ids": "not-a-list"}), "bad_field"),
        (
            msgpack.packb({"t": "welcome", "session": "x", "heartbeat": 1, "server_time": 1}),
            "unknown_frame_type",
        ),
    ],
)
@pytest.mark.parametrize("after_hello", [False, True])
async def test_malformed_frames_get_an_error_and_a_close(
    gw: RunningGateway, transport: str, payload: bytes, code: str, after_hello: bool
) -> None:
    conn = await open_device_connection(gw.url(transport))
    if after_hello:
        await conn.send_frame(hello_for("dev-m"))
        await receive(conn)
    elif b"welcome" in payload:
        code = "hello_required"  # a well-formed frame, but not a hello
    await conn.send_raw(payload)
    await expect_error_then_close(conn, code)
    await assert_gateway_still_serves(gw)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_oversize_frame(gw: RunningGateway, transport: str) -> None:
    conn, _ = await gw.connect("dev-big", transport=transport)
    await conn.send_raw(msgpack.packb({"t": "ping", "pad": "x" * 70_000}))
    await expect_error_then_close(conn, "frame_too_large")
    if transport == "ws":
        assert conn.close_code == 1009
    await assert_gateway_still_serves(gw)


async def test_tcp_length_prefix_over_the_limit_is_refused_before_the_body(
    gw: RunningGateway,
) -> None:
    host, port = gw.addresses.tcp.removeprefix("tcp://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all((10_000_000).to_bytes(4, "big"))  # no body follows
        with trio.fail_after(5):
            data = b""
            while chunk := await stream.receive_some(4096):
                data += chunk
    body = msgpack.unpackb(data[4:])
    assert body["t"] == "error" and body["code"] == "frame_too_large"
    await assert_gateway_still_serves(gw)


# trio-websocket (the test's client, not ours) leaves its socket to the GC when
# the server closes first; the server side is what these tests check.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_websocket_text_message_closes_with_1003(gw: RunningGateway) -> None:
    from trio_websocket import ConnectionClosed as WsClosed
    from trio_websocket import open_websocket_url

    async with open_websocket_url(gw.ws_url) as ws:
        await ws.send_message("hello as text")
        with trio.fail_after(5):
            first = await ws.get_message()
            assert msgpack.unpackb(first)["code"] == "text_not_allowed"
            with pytest.raises(WsClosed):
                await ws.get_message()
        assert ws.closed is not None and ws.closed.code == 1003
    gc.collect()  # let the client's leaked socket be reported inside this test
    await assert_gateway_still_serves(gw)


# trio-websocket (the test's client, not ours) leaves its socket to the GC when
# the server closes first; the server side is what these tests check.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_websocket_unknown_path_is_404(gw: RunningGateway) -> None:
    from trio_websocket import HandshakeError, open_websocket_url

    with pytest.raises(HandshakeError):
        async with open_websocket_url(gw.addresses.ws + "/nowhere"):
            pass
    gc.collect()
    await assert_gateway_still_serves(gw)


async def test_garbage_instead_of_a_websocket_handshake(gw: RunningGateway) -> None:
    host, port = gw.addresses.ws.removeprefix("ws://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(b"\x00\xff garbage \r\n\r\n")
        with trio.fail_after(5):
            while await stream.receive_some(4096):
                pass
    await assert_gateway_still_serves(gw)

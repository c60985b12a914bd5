"""The lean WebSocket upgrade (ws_upgrade.py): the usual request answered as wsproto would,
anything else left to wsproto."""

from __future__ import annotations

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from gateway.transports.ws_upgrade import accept_upgrade
from protocol import Welcome
from tests.faults.common import port_of
from tests.faults.raw import upgrade_request
from tests.gateway.test_websocket_edges import RawPeer, binary
from tests.harness import RunningGateway, hello_for

PATHS = ("/v1/connect", "/")
REQUEST = upgrade_request(8081)[:-4]


def _wsproto_accept(request: bytes) -> bytes:
    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(request + b"\r\n\r\n")
    assert isinstance(next(ws.events()), Request)
    return ws.send(AcceptConnection())


def _headers(answer: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    status, *lines = answer.rstrip(b"\r\n").split(b"\r\n")
    fields = dict(line.split(b": ", 1) for line in lines)
    return status.split(b" ")[1], {k.lower(): v for k, v in fields.items()}


def test_the_usual_upgrade_is_accepted_as_wsproto_accepts_it() -> None:
    answer = accept_upgrade(REQUEST, PATHS, None)
    assert answer is not None
    assert _headers(answer) == _headers(_wsproto_accept(REQUEST))
    # RFC 6455 §1.3's example key and answer.
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in answer


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"GET /v1/connect", b"POST /v1/connect"),
        (b"GET /v1/connect", b"GET /elsewhere"),
        (b"HTTP/1.1", b"HTTP/1.0"),
        (b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
        (b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"Sec-WebSocket-Key: short"),
        (b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", b"X: y"),
        (b"Upgrade: websocket", b"Upgrade: h2c"),
        (b"Connection: Upgrade", b"Connection: keep-alive"),
        (b"Host: 127.0.0.1:8081", b"X: y"),
        (b"Host: 127.0.0.1:8081", b"Host: a\r\nHost: b"),
        (b"Host: 127.0.0.1:8081", b" folded: a"),
        (b"Host: 127.0.0.1:8081", b"Host: a\x00b"),
    ],
)
def test_anything_else_is_left_to_wsproto(old: bytes, new: bytes) -> None:
    assert accept_upgrade(REQUEST.replace(old, new), PATHS, None) is None


def test_an_origin_not_allowed_is_left_to_wsproto_which_refuses_it() -> None:
    request = REQUEST + b"\r\nOrigin: https://evil.example"
    assert accept_upgrade(request, PATHS, frozenset({"https://app.example"})) is None
    assert accept_upgrade(request, PATHS, frozenset({"https://evil.example"})) is not None
    assert accept_upgrade(REQUEST, PATHS, frozenset({"https://app.example"})) is not None


async def test_a_hello_sent_with_the_upgrade_request_is_read(gw: RunningGateway) -> None:
    """Frames a client sends right behind its request (same write) are not lost."""
    stream = await trio.open_tcp_stream("127.0.0.1", port_of(gw.addresses.ws))
    async with stream:
        hello = binary(hello_for("early-1"))
        peer = await RawPeer.upgrade_with(stream, port_of(gw.addresses.ws), hello)
        with trio.fail_after(10):
            assert isinstance(await peer.next_message(), Welcome)

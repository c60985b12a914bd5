"""The WebSocket upgrade (RFC 6455 §4.2), server side: read the HTTP request,
accept it (or answer an HTTP error), and hand back what came after it.

The usual request is answered by `ws_upgrade.accept_upgrade` without h11;
anything else goes through wsproto's handshake, whose state lives only here,
so an open connection holds none of it.
"""

from __future__ import annotations

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.utilities import RemoteProtocolError

from .ws_upgrade import accept_upgrade

RECEIVE_CHUNK = 16_384
MAX_HANDSHAKE_BYTES = 16_384
CONNECT_PATH = "/v1/connect"
RETRY_AFTER = b"5"  # seconds, on a 503 (the gateway is full)


class HandshakeFailed(Exception):
    pass


async def accept_websocket(
    stream: trio.abc.Stream,
    *,
    path: str = CONNECT_PATH,
    origins: frozenset[str] | None = None,
    refuse: tuple[int, str] | None = None,
) -> bytearray:
    """Read the upgrade and accept it; the bytes the client sent after its request
    (frames sent with it). `refuse=(status, body)` answers that HTTP error instead
    and raises HandshakeFailed; so does a bad, oversize or unknown request."""
    ws = WSConnection(ConnectionType.SERVER)
    received = 0
    head = bytearray() if refuse is None else None  # the lean upgrade (ws_upgrade.py)
    while True:
        data = await stream.receive_some(RECEIVE_CHUNK)
        if not data:
            raise HandshakeFailed("peer closed during handshake")
        received += len(data)
        if received > MAX_HANDSHAKE_BYTES:
            raise HandshakeFailed("handshake too large")
        if head is not None:
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0 and head.startswith(b"GET "[: len(head)]):
                continue
            answer = None if end < 0 else accept_upgrade(bytes(head[:end]), (path, "/"), origins)
            if answer is not None:
                await stream.send_all(answer)
                return head[end + 4 :]
            data, head = bytes(head), None  # wsproto reads it all, as ever
        try:
            ws.receive_data(bytes(data))
        except RemoteProtocolError as exc:
            raise HandshakeFailed(f"bad handshake: {exc}") from None
        for event in ws.events():
            if isinstance(event, Request):
                if refuse is not None:
                    await _reject(stream, ws, *refuse)
                    raise HandshakeFailed(f"refused with {refuse[0]}")
                await _answer_request(stream, ws, event, path, origins)
                return bytearray()


async def _answer_request(
    stream: trio.abc.Stream,
    ws: WSConnection,
    request: Request,
    path: str,
    origins: frozenset[str] | None,
) -> None:
    target = request.target.split("?", 1)[0]
    # `/` is accepted too: `serve` prints the WebSocket base URL, and a
    # client that connects to it as printed should still get in.
    if target not in (path, "/"):
        await _reject(stream, ws, 404, "not found")
        raise HandshakeFailed(f"unknown path {target[:64]!r}")
    if origins is not None:
        origin = next(
            (v.decode("latin-1") for k, v in request.extra_headers if k.lower() == b"origin"),
            None,
        )
        if origin is not None and origin not in origins:
            await _reject(stream, ws, 403, "origin not allowed")
            raise HandshakeFailed(f"origin {origin[:64]!r} not allowed")
    await stream.send_all(ws.send(AcceptConnection()))


async def _reject(stream: trio.abc.Stream, ws: WSConnection, status: int, body: str) -> None:
    headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
    if status == 503:
        headers.append((b"retry-after", RETRY_AFTER))
    data = ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
    data += ws.send(RejectData(data=body.encode(), body_finished=True))
    await stream.send_all(data)

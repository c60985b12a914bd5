"""WebSocket with wsproto driven directly on a Trio stream (server side).

One frame per binary message. A text message is a protocol error (1003), an
oversize message 1009, a WebSocket framing error the code wsproto reports.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from protocol.errors import FRAME_TOO_LARGE, TEXT_NOT_ALLOWED, ProtocolError

from .base import CLOSE_NORMAL, CLOSE_TOO_BIG, CLOSE_UNSUPPORTED_DATA

RECEIVE_CHUNK = 16_384
MAX_HANDSHAKE_BYTES = 16_384
CONNECT_PATH = "/v1/connect"
RETRY_AFTER = b"5"  # seconds, on a 503 (the gateway is full)


class HandshakeFailed(Exception):
    pass


class WebSocketClosed(Exception):
    """The WebSocket layer itself failed; `code` is the close code sent."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


class WebSocketTransport:
    name = "ws"

    def __init__(self, stream: trio.abc.Stream, peer: str, max_frame_size: int) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.SERVER)
        self._max = max_frame_size
        self._partial = bytearray()
        self._ready: list[bytes] = []
        self._closed = False
        self.peer = peer

    async def handshake(
        self,
        *,
        path: str = CONNECT_PATH,
        origins: frozenset[str] | None = None,
        refuse: tuple[int, str] | None = None,
    ) -> None:
        """Read the HTTP upgrade and accept it; the caller bounds it in time.

        `refuse=(status, body)` reads the upgrade and answers it with that HTTP
        error instead (503 when the gateway is full), then raises HandshakeFailed.
        """
        received = 0
        while True:
            data = await self._stream.receive_some(RECEIVE_CHUNK)
            if not data:
                raise HandshakeFailed("peer closed during handshake")
            received += len(data)
            if received > MAX_HANDSHAKE_BYTES:
                raise HandshakeFailed("handshake too large")
            try:
                self._ws.receive_data(bytes(data))
            except RemoteProtocolError as exc:
                raise HandshakeFailed(f"bad handshake: {exc}") from None
            for event in self._ws.events():
                if isinstance(event, Request):
                    if refuse is not None:
                        await self._reject(*refuse)
                        raise HandshakeFailed(f"refused with {refuse[0]}")
                    await self._answer_request(event, path, origins)
                    return

    async def _answer_request(
        self, request: Request, path: str, origins: frozenset[str] | None
    ) -> None:
        target = request.target.split("?", 1)[0]
        # `/` is accepted too: `serve` prints the WebSocket base URL, and a
        # client that connects to it as printed should still get in.
        if target not in (path, "/"):
            await self._reject(404, "not found")
            raise HandshakeFailed(f"unknown path {target[:64]!r}")
        if origins is not None:
            origin = next(
                (v.decode("latin-1") for k, v in request.extra_headers if k.lower() == b"origin"),
                None,
            )
            if origin is not None and origin not in origins:
                await self._reject(403, "origin not allowed")
                raise HandshakeFailed(f"origin {origin[:64]!r} not allowed")
        await self._stream.send_all(self._ws.send(AcceptConnection()))

    async def _reject(self, status: int, body: str) -> None:
        headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        if status == 503:
            headers.append((b"retry-after", RETRY_AFTER))
        data = self._ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += self._ws.send(RejectData(data=body.encode(), body_finished=True))
        await self._stream.send_all(data)

    async def receive(self) -> bytes | None:
        while not self._ready:
            if self._closed:
                return None
            data = await self._stream.receive_some(RECEIVE_CHUNK)
            try:
                self._ws.receive_data(bytes(data) if data else None)
            except RemoteProtocolError:
                return None
            await self._process_events()
        return self._ready.pop(0)

    async def _process_events(self) -> None:
        for event in self._ws.events():
            if isinstance(event, BytesMessage):
                self._partial += event.data
                if len(self._partial) > self._max:
                    size = len(self._partial)
                    self._partial = bytearray()
                    raise ProtocolError(
                        FRAME_TOO_LARGE, f"message over {self._max} bytes ({size}+)"
                    )
                if event.message_finished:
                    self._ready.append(bytes(self._partial))
                    self._partial = bytearray()
            elif isinstance(event, TextMessage):
                raise ProtocolError(TEXT_NOT_ALLOWED, "text messages are not part of the protocol")
            elif isinstance(event, Ping):
                await self._send_raw(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                await self._on_close(event)
                return

    async def _on_close(self, event: CloseConnection) -> None:
        self._closed = True
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            await self._send_raw(self._ws.send(event.response()))
            return
        if self._ws.state is ConnectionState.OPEN:
            # A framing error wsproto detected: answer with its code, then stop.
            await self._send_raw(
                self._ws.send(CloseConnection(code=event.code, reason=event.reason or ""))
            )
            raise WebSocketClosed(event.code, event.reason or "")

    async def _send_raw(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._closed = True

    async def send(self, payloads: Sequence[bytes]) -> None:
        ws = self._ws
        if ws.state is not ConnectionState.OPEN:
            raise trio.ClosedResourceError("websocket not open")
        await self._stream.send_all(b"".join(ws.send(Message(data=p)) for p in payloads))

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        if self._ws.state is ConnectionState.OPEN:
            await self._send_raw(self._ws.send(CloseConnection(code=code)))
        await self._stream.aclose()

    async def aclose_forcefully(self) -> None:
        await trio.aclose_forcefully(self._stream)


def close_code_for(error_code: str) -> int:
    if error_code == TEXT_NOT_ALLOWED:
        return CLOSE_UNSUPPORTED_DATA
    if error_code == FRAME_TOO_LARGE:
        return CLOSE_TOO_BIG
    return 1008  # policy violation: the protocol above WebSocket was broken

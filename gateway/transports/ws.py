"""WebSocket with wsproto driven directly on a Trio stream (server side).

One frame per binary message. A text message is a protocol error (1003), an
oversize message 1009, a WebSocket framing error the code wsproto reports.

Once the upgrade is accepted the HTTP handshake objects (h11's connection and
buffers) are dropped, and so is wsproto's frame layer until it is needed:
what devices send is almost only whole, masked, binary frames (RFC 6455 §5.2:
FIN, opcode 2, no RSV bits) of at most the frame limit, which are read here in
a few lines. The first frame that is anything else (a ping, a close, a
fragment, a text frame, junk) and everything after it goes to a wsproto
`Connection` made then, so every unusual case keeps wsproto's handling.
Outgoing data messages are framed here too (a server frame is a 2-10 byte
header and the unmasked payload; no extension is ever accepted).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from protocol import CloseCode, ErrorCode, ProtocolError

from .output import Output, read_some

RECEIVE_CHUNK = 16_384
MAX_HANDSHAKE_BYTES = 16_384
CONNECT_PATH = "/v1/connect"
RETRY_AFTER = b"5"  # seconds, on a 503 (the gateway is full)


class _NotSimple(Exception):
    """The next frame is one for wsproto to read."""


class HandshakeFailed(Exception):
    pass


class WebSocketClosed(trio.BrokenResourceError):
    """The WebSocket layer itself failed (the peer broke it); `code` is the close code sent."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


_BINARY_FIN = 0x82
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


def data_frame(payload: bytes) -> bytes:
    """One whole binary message from the server (RFC 6455 §5.2: FIN, opcode 2, unmasked)."""
    size = len(payload)
    if size < 126:
        return bytes((_BINARY_FIN, size)) + payload
    if size < 65_536:
        return _HEADER_16.pack(_BINARY_FIN, 126, size) + payload
    return _HEADER_64.pack(_BINARY_FIN, 127, size) + payload


def _unmask(payload: bytes, key: bytes) -> bytes:
    size = len(payload)
    if not size:
        return b""
    mask = (key * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(
        size, "little"
    )


class WebSocketTransport:
    name = "ws"
    __slots__ = (
        "_buffer",
        "_closed",
        "_conn",
        "_max",
        "_open",
        "_out",
        "_partial",
        "_ready",
        "_stream",
        "_ws",
        "peer",
    )

    def __init__(self, stream: trio.abc.Stream, peer: str, max_frame_size: int) -> None:
        self._stream = stream
        self._ws: WSConnection | None = WSConnection(ConnectionType.SERVER)  # until upgraded
        self._open = False  # upgraded
        self._conn: Connection | None = None  # wsproto's frame layer, once needed
        self._buffer = b""  # received bytes not yet a whole frame (before `_conn`)
        self._max = max_frame_size
        self._partial: bytearray | None = None
        self._ready: list[bytes] = []
        self._closed = False
        # The reader answers pings and closes while the session writes frames:
        # one Output keeps every write whole and in order.
        self._out = Output(stream)
        self.peer = peer

    def _state(self) -> ConnectionState:
        if self._conn is not None:
            return self._conn.state
        if self._open:
            return ConnectionState.CLOSED if self._closed else ConnectionState.OPEN
        assert self._ws is not None
        return self._ws.state

    def _wsproto(self) -> Connection:
        """wsproto's frame layer, from now on for everything this connection receives."""
        if self._conn is None:
            self._conn = Connection(ConnectionType.SERVER)
        return self._conn

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
        assert self._ws is not None
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
        assert self._ws is not None
        await self._stream.send_all(self._ws.send(AcceptConnection()))
        # Open: drop the HTTP handshake state (and the frame layer it made: an
        # equal one is made if and when a frame needs it).
        self._ws = None
        self._open = True

    async def _reject(self, status: int, body: str) -> None:
        headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        if status == 503:
            headers.append((b"retry-after", RETRY_AFTER))
        assert self._ws is not None
        data = self._ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += self._ws.send(RejectData(data=body.encode(), body_finished=True))
        await self._stream.send_all(data)

    async def receive(self) -> bytes | None:
        assert self._open, "receive() before the handshake"
        while not self._ready:
            if self._conn is not None:
                if self._closed:
                    return None
                data = await read_some(self._stream, RECEIVE_CHUNK)
                try:
                    self._conn.receive_data(data or None)
                except RemoteProtocolError:
                    return None
                await self._process_events(self._conn)
                continue
            try:
                payload = self._simple_frame()
            except _NotSimple:
                await self._to_wsproto(eof=False)
                continue
            if payload is not None:
                return payload
            if self._closed:
                return None
            data = await read_some(self._stream, RECEIVE_CHUNK)
            if data:
                self._buffer += data
            elif self._buffer:
                await self._to_wsproto(eof=True)  # the peer left mid-frame: wsproto says how
            else:
                self._closed = True  # as wsproto: the peer left without a close (1006)
                return None
        return self._ready.pop(0)

    def _simple_frame(self) -> bytes | None:
        """The next whole masked binary frame in the buffer, unmasked; None: need more.

        Raises _NotSimple for a frame wsproto must read (anything else).
        """
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        if buffer[0] != _BINARY_FIN or not buffer[1] & 0x80:
            raise _NotSimple
        size = buffer[1] & 0x7F
        start = 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size = int.from_bytes(buffer[2:4], "big")
            start = 4
            if size < 126:
                raise _NotSimple  # not the shortest form
        elif size == 127:
            raise _NotSimple
        if size > self._max:
            raise _NotSimple  # reported by the frame-size check, as ever
        end = start + 4 + size
        if len(buffer) < end:
            return None
        self._buffer = buffer[end:]
        return _unmask(buffer[start + 4 : end], buffer[start : start + 4])

    async def _to_wsproto(self, *, eof: bool) -> None:
        """From here on wsproto reads this connection, starting with what is buffered."""
        conn = self._wsproto()
        pending, self._buffer = self._buffer, b""
        try:
            conn.receive_data(pending)
            if eof:
                conn.receive_data(None)
        except RemoteProtocolError:
            self._closed = True
            return
        await self._process_events(conn)

    async def _process_events(self, conn: Connection) -> None:
        for event in conn.events():
            if isinstance(event, BytesMessage):
                if event.message_finished and self._partial is None:
                    self._check_size(len(event.data))
                    self._ready.append(bytes(event.data))
                    continue
                partial = self._partial = (self._partial or bytearray()) + event.data
                self._check_size(len(partial))
                if event.message_finished:
                    self._ready.append(bytes(partial))
                    self._partial = None
            elif isinstance(event, TextMessage):
                raise ProtocolError(
                    ErrorCode.TEXT_NOT_ALLOWED, "text messages are not part of the protocol"
                )
            elif isinstance(event, Ping):
                await self._send_raw(conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                await self._on_close(conn, event)
                return

    def _check_size(self, size: int) -> None:
        if size > self._max:
            self._partial = None
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE, f"message over {self._max} bytes ({size}+)"
            )

    async def _on_close(self, conn: Connection, event: CloseConnection) -> None:
        self._closed = True
        if conn.state is ConnectionState.REMOTE_CLOSING:
            await self._send_raw(conn.send(event.response()))
            return
        if conn.state is ConnectionState.OPEN:
            # A framing error wsproto detected: answer with its code, then stop.
            await self._send_raw(
                conn.send(CloseConnection(code=event.code, reason=event.reason or ""))
            )
            raise WebSocketClosed(event.code, event.reason or "")

    async def _send_raw(self, data: bytes) -> None:
        try:
            await self._out.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._closed = True

    def wire(self, payloads: Sequence[bytes]) -> bytes:
        """The bytes of these frames, one binary message each."""
        if self._state() is not ConnectionState.OPEN:
            raise trio.ClosedResourceError("websocket not open")
        if len(payloads) == 1:
            return data_frame(payloads[0])
        return b"".join([data_frame(p) for p in payloads])

    def write_nowait(self, data: bytes) -> bool:
        return self._out.write_nowait(data)

    async def flush(self) -> None:
        await self._out.flush()

    async def send(self, payloads: Sequence[bytes]) -> None:
        await self._out.send_all(self.wire(payloads))

    async def close(self, code: int = CloseCode.NORMAL) -> None:
        if self._open and self._state() is ConnectionState.OPEN:
            await self._send_raw(self._wsproto().send(CloseConnection(code=code)))
        else:
            await self._out.flush()
        await self._stream.aclose()

    async def aclose_forcefully(self) -> None:
        await trio.aclose_forcefully(self._stream)

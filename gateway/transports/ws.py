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

Messages that arrived before a close or a framing error are returned first,
then the close or the error: a device's last ack before it closes counts.
Closing is the close handshake of RFC 6455 §7.1.1: our close frame, then what
the peer still sends is read (bounded in time and bytes) until its answering
close, and only then the TCP close. Closing at once with the peer's data
unread would reset the connection, and a reset can destroy what we sent last
(the `bye` or `error` and the close frame) before the peer has read it.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Sequence

import trio
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    TextMessage,
)

from protocol import CloseCode, ErrorCode, ProtocolError

from .output import Output, read_some
from .ws_handshake import CONNECT_PATH, accept_websocket

RECEIVE_CHUNK = 16_384
# After our close frame, waiting for the peer's answering close: at most this
# long, and at most this much read (a peer streaming data at us stops being
# read, and the connection is closed, even if that resets it).
CLOSE_DRAIN_SECONDS = 2.0
CLOSE_DRAIN_BYTES = 256 * 1024


class _NotSimple(Exception):
    """The next frame is one for wsproto to read."""


class WebSocketClosed(trio.BrokenResourceError):
    """The WebSocket layer itself failed (the peer broke it); `code` is the close code sent."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code


_BINARY_FIN = 0x82
_SENDING = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
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


def _unmask(payload: bytes | bytearray, key: bytes | bytearray) -> bytes:
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
        "_drained",
        "_ending",
        "_max",
        "_open",
        "_out",
        "_partial",
        "_reading",
        "_ready",
        "_short",
        "_stream",
        "_turn",
        "_unparsed",
        "peer",
    )

    def __init__(self, stream: trio.abc.Stream, peer: str, max_frame_size: int) -> None:
        self._stream = stream
        self._open = False  # upgraded
        self._conn: Connection | None = None  # wsproto's frame layer, once needed
        self._buffer = bytearray()  # received bytes not yet a whole frame (before `_conn`)
        self._unparsed = False  # `_conn` was made holding bytes it has not parsed yet
        self._max = max_frame_size
        self._partial: bytearray | None = None  # a binary message arriving in pieces
        # Whole messages not yet returned; made when wsproto parses some (the
        # fast path returns each at once), dropped when empty: idle connections
        # are many, and an empty deque is ~0.7 KB.
        self._ready: deque[bytes] | None = None
        # What ends the stream after the messages in `_ready`, dealt with once
        # they are returned: the peer's close (answered then, in stream order,
        # so replies to its last messages go before our close), a close wsproto
        # asks for on broken framing, or a ProtocolError.
        self._ending: ProtocolError | CloseConnection | None = None
        self._closed = False  # nothing more will be read
        self._drained = -1  # bytes read since our close frame (-1: not sent)
        # One task at a time reads (the reader, or close() draining): the
        # other waits for its turn, as a second flusher waits in Output.
        self._reading = False
        self._short = False  # the last read came back short: wait before the next
        self._turn: trio.Event | None = None
        # The reader answers pings and closes while the session writes frames:
        # one Output keeps every write whole and in order.
        self._out = Output(stream)
        self.peer = peer

    def _state(self) -> ConnectionState:
        if self._conn is not None:
            return self._conn.state
        if self._open:
            return ConnectionState.CLOSED if self._closed else ConnectionState.OPEN
        return ConnectionState.CONNECTING

    def _wsproto(self) -> Connection:
        """wsproto's frame layer, from now on for everything this connection receives."""
        if self._conn is None:
            self._conn = Connection(ConnectionType.SERVER, trailing_data=bytes(self._buffer))
            self._unparsed = bool(self._buffer)
            self._buffer = bytearray()
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
        self._buffer = await accept_websocket(
            self._stream, path=path, origins=origins, refuse=refuse
        )
        self._open = True

    async def receive(self) -> bytes | None:
        """The next binary message; None once the peer has closed.

        Raises ProtocolError (a text or oversize message) or WebSocketClosed
        (broken framing; our close frame is sent), but only after returning
        every message that arrived before the offending frame; likewise the
        peer's close is answered once the messages before it are returned.
        """
        assert self._open, "receive() before the handshake"
        while True:
            ready = self._ready
            if ready is not None:
                message = ready.popleft()
                if not ready:
                    self._ready = None
                return message
            if self._ending is not None:
                await self._end()
            if self._conn is None:
                try:
                    payload = self._simple_frame()
                except _NotSimple:
                    await self._to_wsproto()
                    continue
                if payload is not None:
                    return payload
            if self._closed:
                return None
            await self._pull()

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
            size = buffer[2] << 8 | buffer[3]
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
        payload = _unmask(buffer[start + 4 : end], buffer[start : start + 4])
        # Dropping a prefix of a bytearray moves its start: no copy of the rest.
        del buffer[:end]
        return payload

    async def _to_wsproto(self, *, eof: bool = False) -> None:
        """From here on wsproto reads this connection, starting with what is buffered."""
        conn = self._wsproto()
        if eof:
            conn.receive_data(None)
        self._unparsed = False
        await self._process_events(conn)

    async def _pull(self) -> None:
        """Take in more of what the peer sent: one read, or the bytes wsproto has not
        parsed yet. If another task is reading, wait for it instead: the caller then
        looks at what that read brought."""
        if self._reading:
            if self._turn is None:
                self._turn = trio.Event()
            await self._turn.wait()
            return
        self._reading = True
        try:
            if self._unparsed:
                self._unparsed = False
                assert self._conn is not None
                await self._process_events(self._conn)
            else:
                data = await read_some(self._stream, RECEIVE_CHUNK, wait_first=self._short)
                self._short = len(data) < RECEIVE_CHUNK
                await self._take_in(data)
        finally:
            self._reading = False
            if self._turn is not None:
                self._turn.set()
                self._turn = None

    async def _take_in(self, data: bytes) -> None:
        if self._drained >= 0:
            self._drained += len(data)
            if self._drained > CLOSE_DRAIN_BYTES:
                self._closed = True  # the peer keeps sending after our close: stop reading
                return
        conn = self._conn
        if conn is not None:
            conn.receive_data(data or None)
            await self._process_events(conn)
        elif data:
            self._buffer += data
        elif self._buffer:
            await self._to_wsproto(eof=True)  # the peer left mid-frame: wsproto says how
        else:
            self._closed = True  # as wsproto: the peer left without a close (1006)

    async def _process_events(self, conn: Connection) -> None:
        """Queue the messages wsproto parsed; stop at a close or at an error."""
        for event in conn.events():
            if isinstance(event, CloseConnection):
                self._on_close(conn, event)
                return
            if conn.state is not ConnectionState.OPEN:
                continue  # after our close frame, only the peer's answering close matters
            if isinstance(event, BytesMessage):
                if not self._add(event.data, event.message_finished):
                    return
            elif isinstance(event, TextMessage):
                try:
                    text = self._text(event)
                except ProtocolError as exc:
                    self._ending = exc
                    return
                if text is not None:
                    self._queue(text)
            elif isinstance(event, Ping):
                await self._send_raw(conn.send(event.response()))

    def _add(self, data: bytes | bytearray, finished: bool) -> bool:
        """Add a piece of a binary message; False if that makes it too large."""
        partial = self._partial
        size = len(data) if partial is None else len(partial) + len(data)
        if size > self._max:  # checked before the bytes are kept
            self._partial = None
            self._ending = ProtocolError(
                ErrorCode.FRAME_TOO_LARGE, f"message over {self._max} bytes ({size}+)"
            )
            return False
        if partial is None:
            if finished:
                self._queue(bytes(data))
                return True
            partial = self._partial = bytearray()
        partial += data  # in place: a message in many pieces is copied once, not per piece
        if finished:
            self._queue(bytes(partial))
            self._partial = None
        return True

    def _queue(self, message: bytes) -> None:
        if self._ready is None:
            self._ready = deque()
        self._ready.append(message)

    def _text(self, event: TextMessage) -> bytes | None:
        """A text message (or a piece of one): a protocol error, as the contract says.

        The one seam for a test harness (bench/autobahn echoes text): return the
        bytes to hand to `receive()` once the message is whole, None before.
        """
        raise ProtocolError(
            ErrorCode.TEXT_NOT_ALLOWED, "text messages are not part of the protocol"
        )

    def _on_close(self, conn: Connection, event: CloseConnection) -> None:
        if conn.state in (ConnectionState.REMOTE_CLOSING, ConnectionState.OPEN):
            # The peer's close (REMOTE_CLOSING), or a framing error wsproto
            # found (OPEN): the messages before it are returned first (_end).
            self._ending = event
        else:
            # CLOSED: the answer to our close, or the end of the stream.
            # LOCAL_CLOSING: junk after our close; nothing more is worth reading.
            self._closed = True

    async def _end(self) -> None:
        """Deal with what ended the stream, now that the messages before it are returned."""
        ending = self._ending
        if isinstance(ending, ProtocolError):
            raise ending
        conn = self._conn
        assert ending is not None
        assert conn is not None
        self._closed = True
        if conn.state is ConnectionState.REMOTE_CLOSING:
            self._ending = None  # receive() returns None from now on
            await self._send_raw(conn.send(ending.response()))
            return
        if conn.state is ConnectionState.OPEN:
            reason = ending.reason or ""
            await self._send_raw(conn.send(CloseConnection(code=ending.code, reason=reason)))
        raise WebSocketClosed(ending.code, ending.reason or "")

    async def _send_raw(self, data: bytes) -> None:
        try:
            await self._out.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._closed = True

    def wire(self, payloads: Sequence[bytes]) -> bytes:
        """The bytes of these frames, one binary message each.

        Allowed until our close frame: also once the peer's close has arrived,
        while replies to the messages before it are still going out.
        """
        if self._state() not in _SENDING:
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
        """Our close frame, then the peer's answering close (read for at most
        CLOSE_DRAIN_SECONDS and CLOSE_DRAIN_BYTES), then the TCP close.

        If the peer's close already came, our frame answers it; after broken
        framing nothing more is read (RFC 6455 §7.1.7).
        """
        state = self._state() if self._open else ConnectionState.CLOSED
        if state in _SENDING:
            conn = self._wsproto()
            ending, self._ending = self._ending, None
            self._drained = 0
            await self._send_raw(conn.send(CloseConnection(code=code)))
            if state is ConnectionState.OPEN and not isinstance(ending, CloseConnection):
                with trio.move_on_after(CLOSE_DRAIN_SECONDS):
                    while not self._closed:
                        try:
                            await self._pull()
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            break
        else:
            await self._out.flush()
        self._closed = True
        await self._stream.aclose()

    async def aclose_forcefully(self) -> None:
        await trio.aclose_forcefully(self._stream)

"""The WebSocket transport, wsproto driven directly: one frame per binary message.

WebSocket pings from the gateway are answered with pongs; the close handshake
runs both ways (the gateway's close is answered; our close waits, bounded, for
the gateway's answer). Off-contract input closes the connection with 1002
(broken WebSocket framing), 1008 (a protocol error), 1003 (a text message) or
1009 (a message over the limit): protocol.closing's codes.
"""

from __future__ import annotations

import contextlib
from collections import deque

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError

from protocol import CloseCode, ErrorCode, ProtocolError, close_code_for

from .errors import ConnectionClosed, HandshakeError
from .transport import DeviceConnection

USER_AGENT = b"pushgate-client-sim/1"


class WebSocketConnection(DeviceConnection):
    """A device connection over WebSocket (optionally inside TLS).

    Build it with `open_device_connection`; `handshake()` is its first step.
    """

    transport = "ws"
    _lost_code = CloseCode.ABNORMAL

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_frame_size: int,
        write_timeout: float,
        close_timeout: float,
    ) -> None:
        super().__init__(
            stream,
            max_frame_size=max_frame_size,
            write_timeout=write_timeout,
            close_timeout=close_timeout,
        )
        self._ws = WSConnection(ConnectionType.CLIENT)
        # Complete messages decoded from one read, not yet returned. Bounded:
        # one read is at most RECEIVE_SIZE bytes.
        self._ready: deque[bytes] = deque()
        self._partial = bytearray()
        # Held by whichever task reads the stream: the caller of
        # receive_frame(), or aclose() waiting for the gateway's close.
        self._read_lock = trio.Lock()
        self._peer_closed = trio.Event()
        # Off-contract input seen while reading: raised once the complete
        # messages that came before it have been returned.
        self._pending_error: ProtocolError | None = None

    async def handshake(self, host: str, target: str) -> None:
        """The HTTP upgrade. The caller bounds it with a deadline."""
        request = Request(host=host, target=target, extra_headers=[(b"user-agent", USER_AGENT)])
        async with self._write_lock:
            await self._send_all(self._ws.send(request))
        accepted = False
        while not accepted:
            data = await self._receive_some()
            if not data:
                raise HandshakeError(None, "connection closed during the WebSocket handshake")
            try:
                self._ws.receive_data(data)
            except RemoteProtocolError as exc:
                raise HandshakeError(None, f"bad WebSocket handshake: {exc}") from None
            for event in list(self._ws.events()):
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, RejectConnection):
                    status = event.status_code
                    raise HandshakeError(status, f"WebSocket upgrade refused: HTTP {status}")
                elif accepted and not self._stream_closed:
                    # Frames that came in the same read as the 101 response.
                    await self._handle(event)

    async def aclose(self) -> None:
        try:
            if self._closed is None:
                self._mark_closed(CloseCode.NORMAL, "closed locally")
                with trio.move_on_after(self._close_timeout):
                    await self._close_handshake()
        finally:
            await self._close_stream(graceful=True)

    async def _close_stream(self, *, graceful: bool) -> None:
        # Nothing more can come from the gateway: a close handshake waiting for
        # its answer (e.g. an abort() during aclose()) stops waiting.
        self._peer_closed.set()
        await super()._close_stream(graceful=graceful)

    # --- writing ----------------------------------------------------------------

    def _wrap_payloads(self, payloads: list[bytes]) -> bytes:
        return b"".join(self._ws.send(BytesMessage(data=payload)) for payload in payloads)

    async def _send_event(self, event: Event, *, when: ConnectionState) -> None:
        """Send a control event if the connection is still in state `when`."""
        async with self._write_lock:
            if self._ws.state is when:
                await self._send_all(self._ws.send(event))

    async def _close_with(self, code: int, reason: str) -> None:
        """Send a close frame (best effort) and hang up without waiting for the answer."""
        self._mark_closed(code, reason)
        with contextlib.suppress(ConnectionClosed):
            await self._send_event(
                CloseConnection(code=code, reason=reason), when=ConnectionState.OPEN
            )
        await self._close_stream(graceful=False)

    async def _fail(self, error: ProtocolError) -> None:
        await self._close_with(close_code_for(error.code), error.code)

    async def _close_handshake(self) -> None:
        """Send our close, then wait for the gateway's answer."""
        try:
            await self._send_event(
                CloseConnection(code=CloseCode.NORMAL), when=ConnectionState.OPEN
            )
        except ConnectionClosed:
            return
        if self._ws.state is ConnectionState.CLOSED:
            return
        try:
            self._read_lock.acquire_nowait()
        except trio.WouldBlock:
            # A reader is in receive_frame(): it will see the answer.
            await self._peer_closed.wait()
            return
        try:
            await self._drain_until_closed()
        finally:
            self._read_lock.release()

    async def _drain_until_closed(self) -> None:
        # After our close only the gateway's answering close matters.
        while self._ws.state is not ConnectionState.CLOSED:
            try:
                data = await self._receive_some()
            except ConnectionClosed:
                return
            self._ws.receive_data(data or None)
            for _event in self._ws.events():
                pass

    # --- reading ----------------------------------------------------------------

    async def _next_payload(self) -> bytes:
        # Messages that arrived before a close or an error are returned first:
        # a gateway typically sends `error` and its close in one write.
        async with self._read_lock:
            while not self._ready:
                if self._pending_error is not None:
                    error, self._pending_error = self._pending_error, None
                    raise error
                if self._stream_closed or self._ws.state is ConnectionState.CLOSED:
                    self._mark_closed(CloseCode.ABNORMAL, "connection lost")
                    raise self._closed_error()
                data = await self._receive_some()
                self._ws.receive_data(data or None)
                for event in list(self._ws.events()):
                    if self._stream_closed:
                        break
                    await self._handle(event)
            return self._ready.popleft()

    async def _handle(self, event: Event) -> None:
        if isinstance(event, BytesMessage):
            self._partial += event.data
            if len(self._partial) > self._max_frame_size:
                limit = self._max_frame_size
                await self._protocol_error(ErrorCode.FRAME_TOO_LARGE, f"message over {limit} bytes")
            elif event.message_finished:
                self._ready.append(bytes(self._partial))
                self._partial.clear()
        elif isinstance(event, TextMessage):
            await self._protocol_error(ErrorCode.TEXT_NOT_ALLOWED, "text messages are not allowed")
        elif isinstance(event, Ping):
            # If this write fails the stream is closed, and the reader reports it.
            with contextlib.suppress(ConnectionClosed):
                await self._send_event(event.response(), when=ConnectionState.OPEN)
        elif isinstance(event, CloseConnection):
            await self._on_close(event)
        # Pong: nothing to do (we send no WebSocket pings; keep-alive is the `ping` frame).

    async def _protocol_error(self, code: ErrorCode, message: str) -> None:
        """Close for off-contract input; the reader raises the error next."""
        error = ProtocolError(code, message)
        self._pending_error = self._pending_error or error
        await self._fail(error)

    async def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        code = int(event.code)
        if state is ConnectionState.REMOTE_CLOSING:
            # The gateway started the close handshake: answer it, then hang up.
            self._mark_closed(code, event.reason or "")
            with contextlib.suppress(ConnectionClosed):
                await self._send_event(event.response(), when=ConnectionState.REMOTE_CLOSING)
            await self._close_stream(graceful=True)
        elif state is ConnectionState.OPEN:
            # wsproto could not parse the gateway's bytes; it names the close code.
            error = ProtocolError(ErrorCode.MALFORMED_FRAME, f"bad WebSocket data: {event.reason}")
            self._pending_error = self._pending_error or error
            await self._close_with(code, ErrorCode.MALFORMED_FRAME)
        else:
            # CLOSED: the answer to our own close, or the stream ended (1006).
            self._mark_closed(code, event.reason or "connection lost without a close frame")
            if code == CloseCode.ABNORMAL:
                await self._close_stream(graceful=False)
        self._peer_closed.set()

"""One pushgate device connection on asyncio (run on uvloop), for the load generator.

`PushgateLink` is an `asyncio.Protocol`, WebSocket (wsproto) or length-prefixed
TCP (`protocol.Framer`): the same machinery as the MQTT side's `MqttLink`, so
the two sides' load generators differ only in the protocol they parse. Every
read is split into frames; each `push` goes to `on_push`, and the ids of one
read are acked at once in one `ack` frame (no timer). The WebSocket upgrade
and hello → welcome wait for their answer under a timeout; a partial
WebSocket message is bounded by the frame size limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError

from protocol import DEFAULT_MAX_FRAME_SIZE, Ack, Frame, ProtocolError, Push, decode, encode
from protocol.errors import FRAME_TOO_LARGE
from protocol.framing import Framer, prefix

OnPush = Callable[[Push], None]
AfterRead = Callable[[], None]  # after the ack of one read is written
OnOther = Callable[[Frame], None]  # any frame but `push` after the welcome


class LinkClosed(ConnectionError):
    pass


class PushgateLink(asyncio.Protocol):
    def __init__(
        self,
        *,
        websocket: bool,
        on_push: OnPush,
        on_other: OnOther,
        after_read: AfterRead | None = None,
    ) -> None:
        self.websocket = websocket
        self.on_push = on_push
        self.on_other = on_other
        self.after_read = after_read
        self.transport: asyncio.Transport | None = None
        self.ws = WSConnection(ConnectionType.CLIENT) if websocket else None
        self.framer = Framer(DEFAULT_MAX_FRAME_SIZE)
        self.partial = bytearray()
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.accepted: asyncio.Future[None] = loop.create_future()
        self.first_frame: asyncio.Future[Frame] | None = None
        self.error: str | None = None

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but is one.
        self.transport = cast(asyncio.Transport, transport)
        if self.ws is None:
            self.accepted.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self._payloads(data)
            frames = [decode(payload) for payload in payloads]
        except (ProtocolError, LinkClosed, LocalProtocolError) as exc:
            self._fail(str(exc))
            return
        if not frames:
            return
        waiter = self.first_frame
        if waiter is not None and not waiter.done():
            waiter.set_result(frames[0])
            frames = frames[1:]  # pushes may come in the same read as the welcome
        ids: list[str] = []
        for frame in frames:
            if isinstance(frame, Push):
                self.on_push(frame)
                ids.append(frame.id)
            else:
                self.on_other(frame)
        if ids and self.transport is not None:
            self.transport.write(self._wrap(encode(Ack(ids=tuple(ids)))))
        if self.after_read is not None:
            self.after_read()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.error is None:
            self.error = f"connection lost: {exc!r}" if exc else "connection closed"
        for waiter in (self.accepted, self.first_frame):
            if waiter is not None and not waiter.done():
                waiter.set_exception(LinkClosed(self.error))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- framing ----------------------------------------------------------------

    def _wrap(self, payload: bytes) -> bytes:
        if self.ws is None:
            return prefix(payload) + payload
        return self.ws.send(BytesMessage(data=payload))

    def _payloads(self, data: bytes) -> list[bytes]:
        if self.ws is None:
            self.framer.feed(data)
            return self.framer.payloads()
        self.ws.receive_data(data)
        out: list[bytes] = []
        for event in self.ws.events():
            if isinstance(event, BytesMessage):
                self.partial += event.data
                if len(self.partial) > DEFAULT_MAX_FRAME_SIZE:
                    raise ProtocolError(FRAME_TOO_LARGE, "WebSocket message over the limit")
                if event.message_finished:
                    out.append(bytes(self.partial))
                    self.partial.clear()
            elif isinstance(event, AcceptConnection):
                self.accepted.set_result(None)
            elif isinstance(event, RejectConnection):
                raise LinkClosed(f"WebSocket upgrade refused: HTTP {event.status_code}")
            elif isinstance(event, Ping):
                self._write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self._write(self.ws.send(event.response()))
                raise LinkClosed(f"closed by the gateway: {event.code} {event.reason}")
            elif isinstance(event, TextMessage):
                raise LinkClosed("the gateway sent a WebSocket text message")
        return out

    # --- the client's side ------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.transport is None:
            raise LinkClosed(self.error or "not connected")
        self.transport.write(data)

    def _fail(self, message: str) -> None:
        self.error = message
        self.abort()

    def abort(self) -> None:
        """Hang up at once."""
        if self.transport is not None:
            self.transport.abort()

    async def upgrade(self, host: str, target: str, timeout: float) -> None:
        """The WebSocket upgrade (nothing on TCP)."""
        if self.ws is not None:
            self._write(self.ws.send(Request(host=host, target=target)))
        await asyncio.wait_for(asyncio.shield(self.accepted), timeout)

    async def hello(self, hello: Frame, timeout: float) -> Frame:
        """Send `hello`; the first frame the gateway answers (a `welcome`, or an `error`)."""
        self.first_frame = asyncio.get_running_loop().create_future()
        self._write(self._wrap(encode(hello)))
        return await asyncio.wait_for(self.first_frame, timeout)

    async def disconnect(self, timeout: float) -> None:
        """Close (a WebSocket close frame first), then wait, bounded, until closed."""
        if self.transport is not None:
            if self.ws is not None and self.ws.state is ConnectionState.OPEN:
                self.transport.write(self.ws.send(CloseConnection(code=1000)))
            self.transport.close()
        await asyncio.wait_for(asyncio.shield(self.closed), timeout)

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
from collections.abc import Callable, Iterable
from typing import Any

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

from protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    Ack,
    ErrorCode,
    Frame,
    ProtocolError,
    Push,
    decode,
    encode,
)
from protocol.framing import Framer, prefix

from .aio_link import ClientLink, LinkClosed

OnPush = Callable[[Push], None]
AfterRead = Callable[[], None]  # after the ack of one read is written
OnOther = Callable[[Frame], None]  # any frame but `push` after the welcome

__all__ = ["LinkClosed", "PushgateLink"]


class PushgateLink(ClientLink):
    def __init__(
        self,
        *,
        websocket: bool,
        on_push: OnPush,
        on_other: OnOther,
        after_read: AfterRead | None = None,
    ) -> None:
        super().__init__()
        self.websocket = websocket
        self.on_push = on_push
        self.on_other = on_other
        self.after_read = after_read
        self.ws = WSConnection(ConnectionType.CLIENT) if websocket else None
        self.framer = Framer(DEFAULT_MAX_FRAME_SIZE)
        self.partial = bytearray()
        self.accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.first_frame: asyncio.Future[Frame] | None = None

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.ws is None:
            self.accepted.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self._payloads(data)
            frames = [decode(payload) for payload in payloads]
        except (ProtocolError, LinkClosed, LocalProtocolError) as exc:
            self.fail(str(exc))
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

    def waiters(self) -> Iterable[asyncio.Future[Any]]:
        return [w for w in (self.accepted, self.first_frame) if w is not None]

    def goodbye(self) -> bytes:
        if self.ws is not None and self.ws.state is ConnectionState.OPEN:
            return self.ws.send(CloseConnection(code=1000))
        return b""

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
                    raise ProtocolError(
                        ErrorCode.FRAME_TOO_LARGE, "WebSocket message over the limit"
                    )
                if event.message_finished:
                    out.append(bytes(self.partial))
                    self.partial.clear()
            elif isinstance(event, AcceptConnection):
                self.accepted.set_result(None)
            elif isinstance(event, RejectConnection):
                raise LinkClosed(f"WebSocket upgrade refused: HTTP {event.status_code}")
            elif isinstance(event, Ping):
                self.write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self.write(self.ws.send(event.response()))
                raise LinkClosed(f"closed by the gateway: {event.code} {event.reason}")
            elif isinstance(event, TextMessage):
                raise LinkClosed("the gateway sent a WebSocket text message")
        return out

    # --- the client's side ------------------------------------------------------

    async def upgrade(self, host: str, target: str, timeout: float) -> None:
        """The WebSocket upgrade (nothing on TCP)."""
        if self.ws is not None:
            self.write(self.ws.send(Request(host=host, target=target)))
        await asyncio.wait_for(asyncio.shield(self.accepted), timeout)

    async def hello(self, hello: Frame, timeout: float) -> Frame:
        """Send `hello`; the first frame the gateway answers (a `welcome`, or an `error`)."""
        self.first_frame = asyncio.get_running_loop().create_future()
        self.write(self._wrap(encode(hello)))
        return await asyncio.wait_for(self.first_frame, timeout)

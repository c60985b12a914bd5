"""A pushgate device connection for the load generator, WebSocket or TCP.

`receive()` returns every frame that one socket read brought, so a device can
ack exactly what each read brought in one `ack` frame: the same discipline as
the MQTT side, where the PUBACKs of one read leave in one write. (client_sim's
`DeviceConnection` hands out one frame at a time and cannot tell where a read
ended.) Built on the sans-IO pieces: `protocol.Framer` for TCP, wsproto for
WebSocket. Every write is under a deadline; a read is at most 64 KiB and a
partial WebSocket message at most the frame size limit.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from urllib.parse import urlsplit

import trio
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

from protocol import DEFAULT_MAX_FRAME_SIZE, Frame, Framer, ProtocolError, decode, encode
from protocol.errors import FRAME_TOO_LARGE, TEXT_NOT_ALLOWED
from protocol.framing import prefix

READ_SIZE = 65_536
WRITE_TIMEOUT = 30.0
TRANSPORTS = ("ws", "tcp")


class LinkClosed(Exception):
    """The connection ended (the gateway closed it, or it broke)."""


class DeviceLink(abc.ABC):
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.write_lock = trio.Lock()  # acks from the reader, a close from elsewhere

    async def send(self, frames: Sequence[Frame]) -> None:
        """The frames in one write; LinkClosed if the connection is gone."""
        data = self._wrap([encode(frame) for frame in frames])
        try:
            with trio.fail_after(WRITE_TIMEOUT):
                async with self.write_lock:
                    await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
            await trio.aclose_forcefully(self.stream)
            raise LinkClosed(f"write failed: {exc!r}") from None

    async def receive(self) -> list[Frame]:
        """The frames one read brought (possibly none: a partial frame)."""
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise LinkClosed(f"read failed: {exc!r}") from None
        if not data:
            raise LinkClosed("closed by the gateway")
        return [decode(payload) for payload in await self._payloads(bytes(data))]

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)

    @abc.abstractmethod
    def _wrap(self, payloads: list[bytes]) -> bytes: ...

    @abc.abstractmethod
    async def _payloads(self, data: bytes) -> list[bytes]: ...


class TcpLink(DeviceLink):
    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self.framer = Framer(DEFAULT_MAX_FRAME_SIZE)

    def _wrap(self, payloads: list[bytes]) -> bytes:
        return b"".join(prefix(payload) + payload for payload in payloads)

    async def _payloads(self, data: bytes) -> list[bytes]:
        self.framer.feed(data)
        return self.framer.payloads()


class WsLink(DeviceLink):
    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.partial = bytearray()

    async def handshake(self, host: str, target: str) -> None:
        """The HTTP upgrade; the caller bounds it with a deadline."""
        await self.stream.send_all(self.ws.send(Request(host=host, target=target)))
        while True:
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                raise LinkClosed("closed during the WebSocket handshake")
            self.ws.receive_data(bytes(data))
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    raise LinkClosed(f"WebSocket upgrade refused: HTTP {event.status_code}")

    def _wrap(self, payloads: list[bytes]) -> bytes:
        return b"".join(self.ws.send(BytesMessage(data=payload)) for payload in payloads)

    async def _payloads(self, data: bytes) -> list[bytes]:
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
            elif isinstance(event, Ping):
                await self._control(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    await self._control(self.ws.send(event.response()))
                raise LinkClosed(f"closed by the gateway: {event.code} {event.reason}")
            elif isinstance(event, TextMessage):
                raise ProtocolError(TEXT_NOT_ALLOWED, "the gateway sent a text message")
        return out

    async def _control(self, data: bytes) -> None:
        with trio.move_on_after(WRITE_TIMEOUT):
            async with self.write_lock:
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    raise LinkClosed("connection lost") from None

    async def aclose(self) -> None:
        if self.ws.state is ConnectionState.OPEN:
            with trio.move_on_after(2):
                async with self.write_lock:
                    try:
                        await self.stream.send_all(self.ws.send(CloseConnection(code=1000)))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
        await super().aclose()


async def open_link(url: str, *, source: str | None, timeout: float) -> DeviceLink:
    """Connect to `ws://HOST:PORT/PATH` or `tcp://HOST:PORT` (handshake done, no hello)."""
    parts = urlsplit(url)
    if parts.scheme not in TRANSPORTS or not parts.hostname or not parts.port:
        raise ValueError(f"unsupported device URL {url!r}")
    with trio.fail_after(timeout):
        stream = await trio.open_tcp_stream(parts.hostname, parts.port, local_address=source)
        if parts.scheme == "tcp":
            return TcpLink(stream)
        link = WsLink(stream)
        try:
            await link.handshake(parts.netloc, parts.path or "/")
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return link

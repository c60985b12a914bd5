"""One MQTT 3.1.1 connection on asyncio (run on uvloop), for the load generator.

`MqttLink` is an `asyncio.Protocol`: every read is split into packets by
`mqtt_codec.PacketReader`; each QoS 1 PUBLISH is handed to `on_publish` and
PUBACKed, and the PUBACKs of one read leave in one write (one PUBACK packet
per message, as MQTT wants). PUBACKs for our own publishes go to `on_puback`.
The handshake and SUBSCRIBE wait for their answer under a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from . import mqtt_codec as mq

OnPublish = Callable[[bytes], None]  # the payload
OnPuback = Callable[[int], None]  # the packet id
AfterRead = Callable[[], None]  # after the PUBACKs of one read are written


class LinkClosed(ConnectionError):
    pass


class MqttLink(asyncio.Protocol):
    def __init__(
        self,
        *,
        on_publish: OnPublish | None = None,
        on_puback: OnPuback | None = None,
        after_read: AfterRead | None = None,
    ) -> None:
        self.on_publish = on_publish
        self.on_puback = on_puback
        self.after_read = after_read
        self.transport: asyncio.Transport | None = None
        self.reader = mq.PacketReader()
        self.closed = asyncio.get_running_loop().create_future()
        self._waiting: dict[int, asyncio.Future[mq.Packet]] = {}  # packet kind -> answer
        self._writable = asyncio.Event()
        self._writable.set()
        self.error: str | None = None

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but is one.
        # (asyncio and uvloop both set TCP_NODELAY on their TCP transports.)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            packets = self.reader.packets()
        except mq.MqttError as exc:
            self._fail(str(exc))
            return
        acks: list[bytes] = []
        for packet in packets:
            kind = packet.kind
            if kind == mq.PUBLISH:
                try:
                    _topic, mid, payload = mq.parse_publish(packet)
                except mq.MqttError as exc:
                    self._fail(str(exc))
                    return
                if self.on_publish is not None:
                    self.on_publish(payload)
                if mid is not None:
                    acks.append(mq.puback(mid))
            elif kind == mq.PUBACK:
                if self.on_puback is not None:
                    self.on_puback(mq.packet_id(packet))
            elif kind == mq.PINGRESP:
                pass
            else:
                waiter = self._waiting.pop(kind, None)
                if waiter is None or waiter.done():
                    self._fail(f"unexpected MQTT packet type {kind}")
                    return
                waiter.set_result(packet)
        if acks and self.transport is not None:
            self.transport.write(b"".join(acks))
        if self.after_read is not None:
            self.after_read()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._writable.set()
        if self.error is None:
            self.error = f"connection lost: {exc!r}" if exc else "connection closed"
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(LinkClosed(self.error))
        self._waiting.clear()
        if not self.closed.done():
            self.closed.set_result(None)

    # --- the client's side ------------------------------------------------------

    def _fail(self, message: str) -> None:
        self.error = message
        self.abort()

    def abort(self) -> None:
        """Hang up at once."""
        if self.transport is not None:
            self.transport.abort()

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise LinkClosed(self.error or "not connected")
        self.transport.write(data)

    async def writable(self) -> None:
        """Returns once the transport's write buffer is below its high-water mark."""
        await self._writable.wait()

    async def _request(self, data: bytes, answer: int, timeout: float) -> mq.Packet:
        waiter: asyncio.Future[mq.Packet] = asyncio.get_running_loop().create_future()
        self._waiting[answer] = waiter
        self.write(data)
        return await asyncio.wait_for(waiter, timeout)

    async def handshake(self, client_id: str, *, clean_session: bool, timeout: float) -> bool:
        """CONNECT → CONNACK; True if the broker kept a session for `client_id`."""
        connect = mq.connect(client_id, clean_session=clean_session, keepalive=3600)
        present, code = mq.connack(await self._request(connect, mq.CONNACK, timeout))
        if code:
            raise LinkClosed(f"CONNACK return code {code}")
        return present

    async def subscribe(self, topic: str, timeout: float) -> None:
        """SUBSCRIBE at QoS 1 → SUBACK granting QoS 1."""
        _mid, codes = mq.suback(await self._request(mq.subscribe(1, topic), mq.SUBACK, timeout))
        if codes != b"\x01":
            raise LinkClosed(f"SUBACK refused {topic}: {codes!r}")

    async def disconnect(self, timeout: float) -> None:
        """DISCONNECT, then wait (bounded) for the broker to close."""
        if self.transport is not None:
            self.transport.write(mq.disconnect())
            self.transport.close()
        await asyncio.wait_for(asyncio.shield(self.closed), timeout)


async def open_link(
    host: str,
    port: int,
    *,
    source: str | None = None,
    on_publish: OnPublish | None = None,
    on_puback: OnPuback | None = None,
    after_read: AfterRead | None = None,
    timeout: float = 60.0,
) -> MqttLink:
    """A TCP connection to the broker (before CONNECT)."""
    loop = asyncio.get_running_loop()
    _transport, link = await asyncio.wait_for(
        loop.create_connection(
            lambda: MqttLink(on_publish=on_publish, on_puback=on_puback, after_read=after_read),
            host,
            port,
            local_addr=(source, 0) if source else None,
        ),
        timeout,
    )
    return link

"""One MQTT 3.1.1 connection on asyncio (run on uvloop), for the load generator.

`MqttLink` is an `asyncio.Protocol`: every read is split into packets by
`mqtt_codec.PacketReader`; each QoS 1 PUBLISH is handed to `on_publish` and
PUBACKed, and the PUBACKs of one read leave in one write (one PUBACK packet
per message, as MQTT wants). PUBACKs for our own publishes go to `on_puback`.
The handshake and SUBSCRIBE wait for their answer under a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from . import mqtt_codec as mq
from .aio_link import ClientLink, LinkClosed

OnPublish = Callable[[bytes], None]  # the payload
OnPuback = Callable[[int], None]  # the packet id
AfterRead = Callable[[], None]  # after the PUBACKs of one read are written

__all__ = ["LinkClosed", "MqttLink", "open_link"]


class MqttLink(ClientLink):
    def __init__(
        self,
        *,
        on_publish: OnPublish | None = None,
        on_puback: OnPuback | None = None,
        after_read: AfterRead | None = None,
    ) -> None:
        super().__init__()
        self.on_publish = on_publish
        self.on_puback = on_puback
        self.after_read = after_read
        self.reader = mq.PacketReader()
        self._waiting: dict[int, asyncio.Future[mq.Packet]] = {}  # packet kind -> answer
        self._writable = asyncio.Event()
        self._writable.set()

    # --- asyncio.Protocol -------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            packets = self.reader.packets()
        except mq.MqttError as exc:
            self.fail(str(exc))
            return
        acks: list[bytes] = []
        for packet in packets:
            kind = packet.kind
            if kind == mq.PUBLISH:
                try:
                    _topic, mid, payload = mq.parse_publish(packet)
                except mq.MqttError as exc:
                    self.fail(str(exc))
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
                    self.fail(f"unexpected MQTT packet type {kind}")
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
        self._writable.set()
        super().connection_lost(exc)
        self._waiting.clear()

    def waiters(self) -> Iterable[asyncio.Future[Any]]:
        return list(self._waiting.values())

    def goodbye(self) -> bytes:
        return mq.disconnect()

    # --- the client's side ------------------------------------------------------

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

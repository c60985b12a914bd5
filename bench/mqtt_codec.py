"""The part of MQTT 3.1.1 the benchmark's clients speak, sans-IO (h11's way).

CONNECT, SUBSCRIBE (QoS 1), PUBLISH (QoS 1), PUBACK, PINGREQ and DISCONNECT
out; CONNACK, SUBACK, PUBLISH, PUBACK and PINGRESP in. `PacketReader.feed()`
buffers bytes, `packets()` returns every complete packet; the remaining length
is checked against a limit before the body is buffered, and a malformed
stream raises `MqttError` (the connection must then close).

Why not a library: measured here (BENCHMARKS.md, "the MQTT load generator"),
gmqtt on uvloop costs 36–39 µs of generator CPU per message (publisher and
subscriber together), more than Mosquitto's own ~22 µs: on two cores such a
generator saturates the machine long before Mosquitto saturates its core.
This subset, under `mqtt_link.MqttLink`, costs about half (19–22 µs).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14

MAX_PACKET = 1 << 20  # the benchmark's packets are a few hundred bytes
_U16 = struct.Struct(">H")
_PUBACK_HEAD = bytes([PUBACK << 4, 2])


class MqttError(Exception):
    """The broker sent something this client cannot read; close the connection."""


class Packet(NamedTuple):
    kind: int
    flags: int
    body: bytes


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _remaining_length(len(body)) + body


def connect(client_id: str, *, clean_session: bool, keepalive: int) -> bytes:
    flags = 0x02 if clean_session else 0x00
    body = _string("MQTT") + bytes([4, flags]) + _U16.pack(keepalive) + _string(client_id)
    return _packet(CONNECT << 4, body)


def subscribe(mid: int, topic: str) -> bytes:
    """SUBSCRIBE to one topic at QoS 1."""
    return _packet(SUBSCRIBE << 4 | 0x02, _U16.pack(mid) + _string(topic) + b"\x01")


def publish_head(topic: str) -> bytes:
    """The topic part of a QoS 1 PUBLISH, encoded once per topic."""
    return _string(topic)


def publish(topic_head: bytes, mid: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH; `topic_head` from `publish_head`."""
    body_len = len(topic_head) + 2 + len(payload)
    return b"".join(
        (
            bytes([PUBLISH << 4 | 0x02]),
            _remaining_length(body_len),
            topic_head,
            _U16.pack(mid),
            payload,
        )
    )


def puback(mid: int) -> bytes:
    return _PUBACK_HEAD + _U16.pack(mid)


def pingreq() -> bytes:
    return bytes([PINGREQ << 4, 0])


def disconnect() -> bytes:
    return bytes([DISCONNECT << 4, 0])


def connack(packet: Packet) -> tuple[bool, int]:
    """(session present, return code) of a CONNACK."""
    if len(packet.body) != 2:
        raise MqttError(f"CONNACK of {len(packet.body)} bytes")
    return bool(packet.body[0] & 0x01), packet.body[1]


def suback(packet: Packet) -> tuple[int, bytes]:
    """(packet id, granted QoS codes) of a SUBACK."""
    if len(packet.body) < 3:
        raise MqttError("short SUBACK")
    return _U16.unpack_from(packet.body)[0], packet.body[2:]


def packet_id(packet: Packet) -> int:
    """The packet id of a PUBACK."""
    if len(packet.body) != 2:
        raise MqttError(f"PUBACK of {len(packet.body)} bytes")
    return int(_U16.unpack(packet.body)[0])


def parse_publish(packet: Packet) -> tuple[str, int | None, bytes]:
    """(topic, packet id or None at QoS 0, payload) of a PUBLISH."""
    body = packet.body
    if len(body) < 2:
        raise MqttError("short PUBLISH")
    (topic_len,) = _U16.unpack_from(body)
    at = 2 + topic_len
    qos = (packet.flags >> 1) & 0x03
    mid: int | None = None
    if qos:
        if len(body) < at + 2:
            raise MqttError("short PUBLISH")
        (mid,) = _U16.unpack_from(body, at)
        at += 2
    if at > len(body):
        raise MqttError("short PUBLISH")
    try:
        topic = body[2 : 2 + topic_len].decode()
    except UnicodeDecodeError:
        raise MqttError("PUBLISH topic is not UTF-8") from None
    return topic, mid, body[at:]


class PacketReader:
    """Splits the broker's byte stream into packets."""

    __slots__ = ("_buffer", "_max_packet")

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self._buffer = bytearray()
        self._max_packet = max_packet

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def packets(self) -> list[Packet]:
        """Every complete packet buffered so far, in order."""
        buf = self._buffer
        out: list[Packet] = []
        start = 0
        while (header := self._header(start)) is not None:
            length, at = header
            if len(buf) - at < length:
                break
            first = buf[start]
            out.append(Packet(first >> 4, first & 0x0F, bytes(buf[at : at + length])))
            start = at + length
        if start:
            del buf[:start]
        return out

    def _header(self, start: int) -> tuple[int, int] | None:
        """(remaining length, where the body starts) of the packet at `start`;
        None while the fixed header is incomplete."""
        buf = self._buffer
        length, shift, at = 0, 0, start + 1
        while at < len(buf):
            byte = buf[at]
            at += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if length > self._max_packet:
                    raise MqttError(f"packet of {length} bytes exceeds {self._max_packet}")
                return length, at
            shift += 7
            if shift > 21:
                raise MqttError("remaining length over 4 bytes")
        return None

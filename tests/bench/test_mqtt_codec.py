"""The benchmark's MQTT 3.1.1 subset: bytes as the spec lays them out, a reader
that takes them whole, byte by byte, or broken, and refuses junk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import mqtt_codec as mq


def broker_publish(topic: str, mid: int, payload: bytes) -> bytes:
    """A QoS 1 PUBLISH as a broker sends it (built by hand, not by the codec)."""
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw + mid.to_bytes(2, "big") + payload
    length = len(body)
    encoded = bytearray()
    while True:
        byte, length = length % 128, length // 128
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([0x32]) + bytes(encoded) + body


def test_connect_is_mqtt_311_with_the_session_flag() -> None:
    packet = mq.connect("d000001", clean_session=False, keepalive=60)
    assert packet == b"\x10\x13\x00\x04MQTT\x04\x00\x00\x3c\x00\x07d000001"
    assert mq.connect("p", clean_session=True, keepalive=60)[9] == 0x02


def test_subscribe_puback_and_publish_bytes() -> None:
    assert mq.subscribe(1, "a/b") == b"\x82\x08\x00\x01\x00\x03a/b\x01"
    assert mq.puback(0x1234) == b"\x40\x02\x12\x34"
    assert mq.publish(mq.publish_head("a/b"), 7, b"xy") == b"\x32\x09\x00\x03a/b\x00\x07xy"
    assert mq.disconnect() == b"\xe0\x00" and mq.pingreq() == b"\xc0\x00"


def test_a_long_publish_has_a_multi_byte_remaining_length() -> None:
    payload = b"p" * 300
    packet = mq.publish(mq.publish_head("t"), 1, payload)
    assert packet == broker_publish("t", 1, payload)
    assert packet[1:3] == bytes([(305 % 128) | 0x80, 305 // 128])


@pytest.mark.parametrize("step", [1, 2, 7, 10_000])
def test_reader_splits_a_stream_fed_in_any_pieces(step: int) -> None:
    stream = (
        b"\x20\x02\x01\x00"  # CONNACK, session present
        + b"\x90\x03\x00\x01\x01"  # SUBACK for packet 1, QoS 1 granted
        + broker_publish("pushgate-bench/d000001", 513, b"\x81\xa1t\xa4push" * 40)
        + b"\x40\x02\x00\x09"  # PUBACK 9
        + b"\xd0\x00"  # PINGRESP
    )
    reader = mq.PacketReader()
    packets: list[mq.Packet] = []
    for at in range(0, len(stream), step):
        reader.feed(stream[at : at + step])
        packets += reader.packets()
    assert [p.kind for p in packets] == [mq.CONNACK, mq.SUBACK, mq.PUBLISH, mq.PUBACK, mq.PINGRESP]
    assert mq.connack(packets[0]) == (True, 0)
    assert mq.suback(packets[1]) == (1, b"\x01")
    topic, mid, payload = mq.parse_publish(packets[2])
    assert (topic, mid, payload) == ("pushgate-bench/d000001", 513, b"\x81\xa1t\xa4push" * 40)
    assert mq.packet_id(packets[3]) == 9
    assert reader.packets() == []


def test_reader_refuses_a_packet_over_its_limit_before_buffering_it() -> None:
    reader = mq.PacketReader(max_packet=100)
    reader.feed(b"\x30\xe5\x00")  # PUBLISH declaring 101 bytes, none of them here
    with pytest.raises(mq.MqttError, match="exceeds 100"):
        reader.packets()


def test_reader_refuses_a_remaining_length_of_five_bytes() -> None:
    reader = mq.PacketReader()
    reader.feed(b"\x30\xff\xff\xff\xff\x01")
    with pytest.raises(mq.MqttError, match="over 4 bytes"):
        reader.packets()


@pytest.mark.parametrize(
    ("packet", "parse"),
    [
        (mq.Packet(mq.CONNACK, 0, b"\x00"), mq.connack),
        (mq.Packet(mq.SUBACK, 0, b"\x00\x01"), mq.suback),
        (mq.Packet(mq.PUBACK, 0, b"\x00"), mq.packet_id),
        (mq.Packet(mq.PUBLISH, 2, b"\x00\x05ab"), mq.parse_publish),
        (mq.Packet(mq.PUBLISH, 2, b"\x00\x01a\x00"), mq.parse_publish),
    ],
)
def test_short_packets_are_errors_not_crashes(packet: mq.Packet, parse: object) -> None:
    with pytest.raises(mq.MqttError):
        parse(packet)  # type: ignore[operator]


def test_qos0_publish_has_no_packet_id() -> None:
    assert mq.parse_publish(mq.Packet(mq.PUBLISH, 0, b"\x00\x01tpay")) == ("t", None, b"pay")


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_arbitrary_bytes_give_packets_or_the_error(data: bytes, step: int) -> None:
    reader = mq.PacketReader(max_packet=200)
    try:
        for at in range(0, len(data), step):
            reader.feed(data[at : at + step])
            for packet in reader.packets():
                assert 0 <= packet.kind <= 15 and len(packet.body) <= 200
    except mq.MqttError:
        pass


@given(st.text(min_size=1, max_size=40), st.integers(1, 65535), st.binary(max_size=20_000))
def test_publish_round_trips_through_the_reader(topic: str, mid: int, payload: bytes) -> None:
    reader = mq.PacketReader()
    reader.feed(mq.publish(mq.publish_head(topic), mid, payload))
    (packet,) = reader.packets()
    assert mq.parse_publish(packet) == (topic, mid, payload)


def test_a_topic_that_is_not_utf8_is_an_error() -> None:
    with pytest.raises(mq.MqttError, match="UTF-8"):
        mq.parse_publish(mq.Packet(mq.PUBLISH, 0, b"\x00\x01\xffpay"))

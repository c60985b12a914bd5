"""TCP length-prefixed framing: reassembly from any split, limits, and junk."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import DEFAULT_MAX_FRAME_SIZE, Frame, Framer, Ping, Pong, TcpDecoder, encode_tcp
from protocol.closing import ErrorCode
from protocol.codec import encode
from protocol.errors import ProtocolError
from protocol.framing import prefix

from .strategies import frames

PAYLOADS = [b"a", b"hello", bytes(range(256)) * 3, b"\x00" * 17]


def stream_of(payloads: list[bytes]) -> bytes:
    return b"".join(prefix(p) + p for p in payloads)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in pairwise(points)]


def feed_all(framer: Framer, chunks: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for chunk in chunks:
        framer.feed(chunk)
        out.extend(framer.payloads())
    return out


def test_prefix_is_four_bytes_big_endian() -> None:
    assert prefix(b"x" * 258) == b"\x00\x00\x01\x02"
    assert encode_tcp(Ping()) == prefix(encode(Ping())) + encode(Ping())


# --- reassembly ---------------------------------------------------------------


def test_fed_whole() -> None:
    framer = Framer()
    assert feed_all(framer, [stream_of(PAYLOADS)]) == PAYLOADS
    assert framer.buffered == 0


def test_fed_one_byte_at_a_time() -> None:
    framer = Framer()
    data = stream_of(PAYLOADS)
    assert feed_all(framer, [data[i : i + 1] for i in range(len(data))]) == PAYLOADS
    assert framer.buffered == 0


def test_trailing_partial_frame_waits_for_the_rest() -> None:
    last = b"the last one"
    data = stream_of(PAYLOADS) + prefix(last) + last
    for cut in range(1, len(prefix(last) + last)):
        framer = Framer()
        assert feed_all(framer, [data[:-cut]]) == PAYLOADS
        assert framer.next_payload() is None
        assert framer.buffered == len(prefix(last) + last) - cut
        assert feed_all(framer, [data[-cut:]]) == [last]
        assert framer.buffered == 0


def test_empty_feed_and_empty_buffer() -> None:
    framer = Framer()
    assert framer.next_payload() is None
    framer.feed(b"")
    assert framer.payloads() == []


@settings(max_examples=200)
@given(payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=10), data=st.data())
def test_any_split_gives_the_same_payloads(payloads: list[bytes], data: st.DataObject) -> None:
    stream = stream_of(payloads)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=20))
    framer = Framer()
    assert feed_all(framer, split(stream, cuts)) == payloads
    assert framer.buffered == 0


def test_frame_of_exactly_the_limit_is_accepted() -> None:
    framer = Framer(max_frame_size=8)
    framer.feed(prefix(b"x" * 8) + b"x" * 8)
    assert framer.payloads() == [b"x" * 8]


# --- errors -------------------------------------------------------------------


def _raises(framer: Framer, code: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        framer.next_payload()
    assert info.value.code == code
    return info.value


def test_zero_length_is_malformed_frame() -> None:
    framer = Framer()
    framer.feed(b"\x00\x00\x00\x00")
    _raises(framer, ErrorCode.MALFORMED_FRAME)


def test_zero_length_after_good_frames() -> None:
    framer = Framer()
    framer.feed(stream_of([b"ok"]) + b"\x00\x00\x00\x00")
    assert framer.next_payload() == b"ok"
    _raises(framer, ErrorCode.MALFORMED_FRAME)


@pytest.mark.parametrize("length", [DEFAULT_MAX_FRAME_SIZE + 1, 2**24, 2**32 - 1])
def test_declared_length_over_the_limit_fails_on_the_prefix_alone(length: int) -> None:
    framer = Framer()
    header = length.to_bytes(4, "big")
    for byte in header[:3]:
        framer.feed(bytes([byte]))
        assert framer.next_payload() is None
    framer.feed(header[3:])
    # Raised as soon as the 4-byte prefix is in: no byte of the body was sent.
    _raises(framer, ErrorCode.FRAME_TOO_LARGE)
    assert framer.buffered == 4


def test_limit_is_configurable() -> None:
    framer = Framer(max_frame_size=8)
    framer.feed(prefix(b"x" * 9))
    _raises(framer, ErrorCode.FRAME_TOO_LARGE)


def test_declared_length_at_the_default_limit_waits_for_the_body() -> None:
    framer = Framer()
    framer.feed(DEFAULT_MAX_FRAME_SIZE.to_bytes(4, "big"))
    assert framer.next_payload() is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x00\x00\x00", ErrorCode.MALFORMED_FRAME),
        (b"\xff\xff\xff\xff", ErrorCode.FRAME_TOO_LARGE),
    ],
)
def test_after_an_error_the_framer_keeps_raising(data: bytes, code: str) -> None:
    framer = Framer()
    framer.feed(data)
    first = _raises(framer, code)
    assert _raises(framer, code) is first
    with pytest.raises(ProtocolError) as info:
        framer.feed(stream_of([b"fine"]))
    assert info.value is first
    with pytest.raises(ProtocolError) as info:
        framer.payloads()
    assert info.value is first


# --- TcpDecoder ---------------------------------------------------------------


def test_tcp_decoder_yields_frames() -> None:
    decoder = TcpDecoder()
    data = encode_tcp(Ping()) + encode_tcp(Pong())
    decoder.feed(data[:3])
    assert list(decoder) == []
    decoder.feed(data[3:-1])
    assert list(decoder) == [Ping()]
    decoder.feed(data[-1:])
    assert list(decoder) == [Pong()]
    assert list(decoder) == []


@settings(max_examples=100)
@given(sent=st.lists(frames, max_size=8), data=st.data())
def test_tcp_decoder_reassembles_frames(sent: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(encode_tcp(f) for f in sent)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=10))
    decoder = TcpDecoder()
    received: list[Frame] = []
    for chunk in split(stream, cuts):
        decoder.feed(chunk)
        received.extend(decoder)
    assert received == sent


def test_tcp_decoder_reports_a_bad_body() -> None:
    decoder = TcpDecoder()
    body = b"\x81\xa1t\xa4nope"  # {"t": "nope"}
    decoder.feed(encode_tcp(Ping()) + prefix(body) + body)
    assert next(decoder) == Ping()
    with pytest.raises(ProtocolError) as info:
        next(decoder)
    assert info.value.code == ErrorCode.UNKNOWN_FRAME_TYPE


def test_tcp_decoder_enforces_its_limit() -> None:
    decoder = TcpDecoder(max_frame_size=4)
    assert len(encode(Pong())) > 4
    decoder.feed(encode_tcp(Pong()))
    with pytest.raises(ProtocolError) as info:
        next(decoder)
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


def drain(decoder: TcpDecoder, data: bytes) -> None:
    """Feed `data` and take frames until the decoder needs more or stays broken.
    Only ProtocolError may come out."""
    try:
        decoder.feed(data)
    except ProtocolError:
        return
    # Each frame consumes at least 5 bytes, so this bound is never the limit
    # unless the framer is broken (then it raises on every call).
    for _ in range(len(data) // 5 + 2):
        try:
            next(decoder)
        except StopIteration:
            return
        except ProtocolError:
            continue


@settings(max_examples=300)
@given(chunks=st.lists(st.binary(max_size=100), max_size=5), limit=st.integers(1, 128))
def test_arbitrary_bytes_into_tcp_decoder_give_only_protocol_errors(
    chunks: list[bytes], limit: int
) -> None:
    decoder = TcpDecoder(max_frame_size=limit)
    for chunk in chunks:
        drain(decoder, chunk)


@settings(max_examples=300)
@given(bodies=st.lists(st.binary(min_size=1, max_size=100), max_size=5))
def test_arbitrary_bodies_into_tcp_decoder_give_only_protocol_errors(bodies: list[bytes]) -> None:
    # Well-formed prefixes, junk bodies: exercises the codec behind the framer.
    drain(TcpDecoder(), stream_of(bodies))

"""Frames and the MessagePack codec: round-trips, validation, and junk."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import DEFAULT_MAX_FRAME_SIZE, Frame, Hello, Push, decode, encode
from protocol.closing import ErrorCode
from protocol.codec import encode_map
from protocol.errors import ProtocolError

from .strategies import FRAME_STRATEGIES, frames, msgpack_values, texts


def decode_or_error(payload: bytes, **kwargs: Any) -> Frame | ProtocolError:
    """Decode; a ProtocolError is an answer, any other exception fails the test."""
    try:
        return decode(payload, **kwargs)
    except ProtocolError as exc:
        return exc


def error_code(payload: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        decode(payload)
    return info.value.code


# --- round-trips --------------------------------------------------------------


@pytest.mark.parametrize("t", sorted(FRAME_STRATEGIES))
@settings(max_examples=50)
@given(data=st.data())
def test_every_frame_type_round_trips(t: str, data: st.DataObject) -> None:
    frame = data.draw(FRAME_STRATEGIES[t])
    assert t == frame.T
    payload = encode(frame)
    assert msgpack.unpackb(payload)["t"] == t
    assert decode(payload) == frame


@settings(max_examples=200)
@given(frames)
def test_round_trip_is_stable(frame: Frame) -> None:
    payload = encode(frame)
    assert encode(decode(payload)) == payload


@settings(max_examples=100)
@given(frame=frames, extra=st.dictionaries(texts, msgpack_values, max_size=5))
def test_unknown_keys_are_ignored(frame: Frame, extra: dict[str, Any]) -> None:
    m = frame.to_map()
    assert decode(encode_map({**extra, **m})) == frame


def test_push_ext_defaults_to_empty() -> None:
    m = Push(
        id="m1", msg_key="k", push_type="simple", title="t", content="c", created=1, expires=2
    ).to_map()
    del m["ext"]
    frame = decode(encode_map(m))
    assert isinstance(frame, Push)
    assert frame.ext == {}


# --- field validation ---------------------------------------------------------

# Each frame type's required fields, with values of the wrong type.
_NOT_STR = [None, 1, 1.5, True, b"bytes", ["x"], {"x": "y"}]
_NOT_INT = [None, "1", 1.5, True, False, b"\x01", [1], {"x": 1}]
_VALID: dict[str, dict[str, Any]] = {
    "hello": {"v": 1, "app": "a", "device": "d", "platform": "android", "token": "0" * 64},
    "ack": {"ids": ["m1", "m2"]},
    "bind": {"user": "alice", "sig": "0" * 64},
    "welcome": {"session": "s", "heartbeat": 30, "server_time": 1_700_000_000_000},
    "push": {
        "id": "m1",
        "msg_key": "k",
        "push_type": "simple",
        "title": "t",
        "content": "c",
        "ext": {"a": "b"},
        "created": 1,
        "expires": 2,
    },
    "bound": {"user": "alice"},
    "error": {"code": "bad_field", "message": "m"},
    "bye": {"reason": "shutdown"},
}
_WRONG: dict[tuple[str, str], list[Any]] = {
    ("hello", "app"): _NOT_STR,
    ("hello", "device"): _NOT_STR,
    ("hello", "platform"): _NOT_STR,
    ("ack", "ids"): [None, "m1", 1, {"m1": "x"}, [1], ["m1", None], [b"m1"], [["m1"]]],
    ("bind", "user"): [*_NOT_STR, "", "with space", "tab\there", "x" * 129, "nl\n"],
    ("bind", "sig"): _NOT_STR,
    ("welcome", "session"): _NOT_STR,
    ("welcome", "heartbeat"): _NOT_INT,
    ("welcome", "server_time"): _NOT_INT,
    ("push", "id"): _NOT_STR,
    ("push", "msg_key"): _NOT_STR,
    ("push", "push_type"): _NOT_STR,
    ("push", "title"): _NOT_STR,
    ("push", "content"): _NOT_STR,
    ("push", "ext"): [None, "x", 1, ["a", "b"], {"a": 1}, {"a": None}, {"a": b"b"}],
    ("push", "created"): _NOT_INT,
    ("push", "expires"): _NOT_INT,
    ("bound", "user"): _NOT_STR,
    ("error", "code"): _NOT_STR,
    ("error", "message"): _NOT_STR,
    ("bye", "reason"): _NOT_STR,
}
# Optional fields: `v` (its value is judged by the gateway: bad_hello) and `ext`.
_REQUIRED = [key for key in _WRONG if key not in {("push", "ext")}]


@pytest.mark.parametrize("t", sorted(_VALID))
def test_valid_maps_decode(t: str) -> None:
    frame = decode(encode_map({"t": t, **_VALID[t]}))
    assert t == frame.T


@pytest.mark.parametrize(("t", "key"), _REQUIRED)
def test_missing_field_is_bad_field(t: str, key: str) -> None:
    m = {"t": t, **_VALID[t]}
    del m[key]
    assert error_code(encode_map(m)) == ErrorCode.BAD_FIELD


@pytest.mark.parametrize(
    ("t", "key", "value"),
    [(t, key, value) for (t, key), values in _WRONG.items() for value in values],
)
def test_wrong_typed_field_is_bad_field(t: str, key: str, value: Any) -> None:
    m = {"t": t, **_VALID[t], key: value}
    assert error_code(encode_map(m)) == ErrorCode.BAD_FIELD


@pytest.mark.parametrize("token", [None, 1, 1.5, True, b"bytes", ["x"], {"x": "y"}, "missing"])
def test_hello_without_a_string_token_decodes_with_an_empty_token(token: Any) -> None:
    # The contract: a missing (or unreadable) token is `auth_failed`, as a bad
    # one is, not a `bad_field`; the connection's hello check says so.
    m = {"t": "hello", **_VALID["hello"], "token": token}
    if token == "missing":
        del m["token"]
    frame = decode(encode_map(m))
    assert isinstance(frame, Hello)
    assert frame.token == ""


@pytest.mark.parametrize("v", [None, "1", 1.0, True, [1]])
def test_hello_with_a_non_integer_version_is_left_to_the_gateway(v: Any) -> None:
    # The codec checks types only; a bad `v` decodes as -1 and the gateway
    # answers `bad_hello`, like any version other than 1.
    frame = decode(encode_map({"t": "hello", **_VALID["hello"], "v": v}))
    assert isinstance(frame, Hello)
    assert frame.v == -1


def test_too_many_ack_ids_is_bad_field() -> None:
    assert error_code(encode_map({"t": "ack", "ids": ["m"] * 10_001})) == ErrorCode.BAD_FIELD


# --- frame type and shape -----------------------------------------------------


@pytest.mark.parametrize("t", ["", "nope", "HELLO", "Ping", "hello ", "push2"])
def test_unknown_type_is_unknown_frame_type(t: str) -> None:
    assert error_code(encode_map({"t": t})) == ErrorCode.UNKNOWN_FRAME_TYPE


@pytest.mark.parametrize("obj", [None, 1, "ping", b"ping", [], ["t", "ping"], 1.5, True])
def test_non_map_is_malformed_frame(obj: Any) -> None:
    assert error_code(msgpack.packb(obj)) == ErrorCode.MALFORMED_FRAME


@pytest.mark.parametrize("m", [{}, {"type": "ping"}, {"t": None}, {"t": 1}, {"t": b"ping"}])
def test_map_without_a_string_t_is_malformed_frame(m: dict[str, Any]) -> None:
    assert error_code(msgpack.packb(m, use_bin_type=True)) == ErrorCode.MALFORMED_FRAME


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xc1",  # never-used type byte
        b"\x81",  # map of 1, nothing after
        b"\x81\xa1t\xa4pin",  # truncated string
        b"\x81\xa1t\xa2\xff\xfe",  # invalid UTF-8
        b"\x81\x01\xa4ping",  # integer key
        b"\x81\x81\xa1a\xa1b\xa4ping",  # map as key
        b"\x81\xa1t\xa4ping\x00",  # trailing data
        b"\x91" * 5000 + b"\xc0",  # nesting deeper than the unpacker's stack
        b"\xdf\xff\xff\xff\xff",  # map32 claiming 4 billion entries
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4 billion items
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GB
        b"\xd6\xff\x00",  # truncated timestamp ext
        b"\xc7\x03\xff\x00\x00\x00",  # timestamp ext of a bad length
    ],
)
def test_malformed_messagepack_is_malformed_frame(payload: bytes) -> None:
    assert error_code(payload) == ErrorCode.MALFORMED_FRAME


# --- size ---------------------------------------------------------------------


def _push_of_size(size: int) -> bytes:
    base = Push(id="m", msg_key="k", push_type="simple", title="", content="", created=0, expires=0)
    overhead = len(encode(base)) + 2  # content: a 3-byte str16 header replaces a 1-byte fixstr
    payload = encode_map({**base.to_map(), "content": "x" * (size - overhead)})
    assert len(payload) == size
    return payload


def test_frame_at_the_limit_decodes() -> None:
    assert isinstance(decode(_push_of_size(DEFAULT_MAX_FRAME_SIZE)), Push)


def test_oversize_payload_is_frame_too_large() -> None:
    assert error_code(_push_of_size(DEFAULT_MAX_FRAME_SIZE + 1)) == ErrorCode.FRAME_TOO_LARGE
    assert error_code(b"\x00" * (DEFAULT_MAX_FRAME_SIZE + 1)) == ErrorCode.FRAME_TOO_LARGE


@settings(max_examples=50)
@given(frame=frames)
def test_max_size_is_the_callers(frame: Frame) -> None:
    payload = encode(frame)
    assert decode(payload, max_size=len(payload)) == frame
    with pytest.raises(ProtocolError) as info:
        decode(payload, max_size=len(payload) - 1)
    assert info.value.code == ErrorCode.FRAME_TOO_LARGE


# --- junk ---------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_frame_or_a_protocol_error(payload: bytes) -> None:
    decode_or_error(payload)


@settings(max_examples=200)
@given(
    payload=st.binary(max_size=200),
    max_size=st.integers(min_value=0, max_value=64),
)
def test_arbitrary_bytes_with_a_small_limit(payload: bytes, max_size: int) -> None:
    result = decode_or_error(payload, max_size=max_size)
    if len(payload) > max_size:
        assert isinstance(result, ProtocolError)
        assert result.code == ErrorCode.FRAME_TOO_LARGE


@settings(max_examples=200)
@given(
    t=st.sampled_from(sorted(FRAME_STRATEGIES)) | texts,
    fields=st.dictionaries(
        st.sampled_from(sorted({key for _, key in _WRONG} | {"v", "t"})) | texts,
        msgpack_values,
        max_size=6,
    ),
)
def test_arbitrary_maps_give_a_frame_or_a_protocol_error(t: str, fields: dict[str, Any]) -> None:
    result = decode_or_error(encode_map({"t": t, **fields}))
    if isinstance(result, ProtocolError):
        assert result.code in {
            ErrorCode.BAD_FIELD,
            ErrorCode.UNKNOWN_FRAME_TYPE,
            ErrorCode.MALFORMED_FRAME,
        }


@settings(max_examples=300)
@given(frame=frames, data=st.data())
def test_corrupted_frames_give_a_frame_or_a_protocol_error(
    frame: Frame, data: st.DataObject
) -> None:
    payload = bytearray(encode(frame))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        i = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
        payload[i] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(payload)))
    decode_or_error(bytes(payload[:cut]))

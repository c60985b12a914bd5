"""The gateway side's connection state machine: its table, hello checks, and junk.

Sans-IO, so every case is bytes in and a frame or a rejection out: whole
payloads, a TCP byte stream fed one byte at a time, and arbitrary bytes.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Ack,
    Bind,
    Bye,
    ByeReason,
    CloseCode,
    Error,
    ErrorCode,
    Frame,
    Hello,
    Ping,
    ProtocolError,
    Rejection,
    ServerConnection,
    State,
    TcpDecoder,
    Unbind,
    encode,
    encode_tcp,
    hello_problem,
)
from protocol.connection import OTHER, TRANSITIONS, LocalProtocolError
from protocol.framing import Framer

from .strategies import FRAME_STRATEGIES, frames

HELLO = Hello(v=1, app="app", device="dev", platform="android", token="ab" * 32)
DEVICE_FRAMES: dict[str, Frame] = {
    "hello": HELLO,
    "ack": Ack(ids=("m1",)),
    "bind": Bind(user="alice", sig="00"),
    "unbind": Unbind(),
    "ping": Ping(),
}
GATEWAY_TYPES = sorted(set(FRAME_STRATEGIES) - set(DEVICE_FRAMES))


def open_connection() -> ServerConnection:
    conn = ServerConnection()
    assert conn.receive(encode(HELLO)) == HELLO
    conn.authenticated()
    conn.attached()
    assert conn.state is State.OPEN
    return conn


def in_state(state: State) -> ServerConnection:
    conn = ServerConnection()
    if state is State.AWAITING_HELLO:
        return conn
    conn.receive(encode(HELLO))
    if state is State.AUTHENTICATING:
        return conn
    conn.authenticated()
    if state is State.ATTACHING:
        return conn
    conn.attached()
    if state is State.OPEN:
        return conn
    conn.close(Bye(reason=ByeReason.SHUTDOWN))
    if state is State.CLOSING:
        return conn
    conn.closed()
    return conn


# --- the table ------------------------------------------------------------------------


def test_every_state_is_reached_by_the_documented_steps() -> None:
    assert [in_state(s).state for s in State] == list(State)


def test_the_table_rows_are_the_states_that_read() -> None:
    assert set(TRANSITIONS) == {State.AWAITING_HELLO, State.OPEN}
    assert all(OTHER in row for row in TRANSITIONS.values())


@pytest.mark.parametrize("t", sorted(DEVICE_FRAMES))
def test_before_hello_only_a_hello_is_accepted(t: str) -> None:
    conn = ServerConnection()
    result = conn.receive(encode(DEVICE_FRAMES[t]))
    if t == "hello":
        assert result == HELLO
        assert conn.state is State.AUTHENTICATING
    else:
        assert isinstance(result, Rejection)
        assert result.error.code == ErrorCode.HELLO_REQUIRED
        assert result.close_code == CloseCode.POLICY_VIOLATION
        assert conn.state is State.CLOSING


@pytest.mark.parametrize("t", sorted(DEVICE_FRAMES))
def test_when_open_device_frames_are_accepted_and_a_second_hello_is_a_reply(t: str) -> None:
    conn = open_connection()
    result = conn.receive(encode(DEVICE_FRAMES[t]))
    if t == "hello":
        assert isinstance(result, Rejection)
        assert result.error.code == ErrorCode.BAD_HELLO
        assert not result.fatal
    else:
        assert result == DEVICE_FRAMES[t]
    assert conn.state is State.OPEN


@pytest.mark.parametrize("t", GATEWAY_TYPES)
@given(data=st.data())
def test_a_gateway_frame_from_the_device_is_fatal(t: str, data: st.DataObject) -> None:
    frame = data.draw(FRAME_STRATEGIES[t])
    before = ServerConnection().receive(encode(frame))
    assert isinstance(before, Rejection) and before.fatal
    assert before.error.code == ErrorCode.HELLO_REQUIRED
    conn = open_connection()
    after = conn.receive(encode(frame))
    assert isinstance(after, Rejection) and after.fatal
    assert after.error.code == ErrorCode.UNKNOWN_FRAME_TYPE
    assert repr(t) in after.error.message
    assert conn.state is State.CLOSING


@pytest.mark.parametrize("state", [State.AUTHENTICATING, State.ATTACHING, State.CLOSING])
def test_no_frame_is_read_in_the_states_between(state: State) -> None:
    with pytest.raises(LocalProtocolError):
        in_state(state).receive(encode(Ping()))


def test_steps_out_of_order_are_the_drivers_bug() -> None:
    with pytest.raises(LocalProtocolError):
        ServerConnection().authenticated()
    with pytest.raises(LocalProtocolError):
        in_state(State.AUTHENTICATING).attached()


def test_a_close_during_attach_stays_closed() -> None:
    conn = in_state(State.ATTACHING)
    assert conn.close(Bye(reason=ByeReason.REPLACED)) == CloseCode.NORMAL
    conn.attached()  # the device was recorded meanwhile: the close stands
    assert conn.state is State.CLOSING


def test_close_happens_once_with_the_code_of_its_reason() -> None:
    conn = open_connection()
    assert conn.close(Bye(reason=ByeReason.SHUTDOWN)) == CloseCode.GOING_AWAY
    assert conn.close(Bye(reason=ByeReason.IDLE_TIMEOUT)) is None
    assert open_connection().close(Bye(reason=ByeReason.IDLE_TIMEOUT)) == CloseCode.NORMAL


# --- errors the gateway raises itself -------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode))
def test_before_welcome_every_error_is_fatal(code: ErrorCode) -> None:
    for state in (State.AWAITING_HELLO, State.AUTHENTICATING, State.ATTACHING):
        rejection = in_state(state).error(code, "m")
        assert rejection.fatal, (state, code)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_once_open_only_reply_codes_are_replies(code: ErrorCode) -> None:
    conn = open_connection()
    rejection = conn.error(code, "m")
    replies = {
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.BAD_HELLO,
        ErrorCode.STORE_UNAVAILABLE,
        ErrorCode.BAD_VENDOR,
    }
    assert rejection.fatal is (code not in replies)
    assert conn.state is (State.CLOSING if rejection.fatal else State.OPEN)
    assert rejection.error == Error(code=code, message="m")


def test_fail_is_fatal_even_for_a_reply_code() -> None:
    conn = open_connection()
    rejection = conn.fail(ErrorCode.STORE_UNAVAILABLE, "full")
    assert rejection.close_code == CloseCode.TRY_AGAIN_LATER
    assert conn.state is State.CLOSING


def test_framing_errors_below_the_frame_layer_are_fatal() -> None:
    conn = open_connection()
    rejection = conn.reject(ProtocolError(ErrorCode.TEXT_NOT_ALLOWED, "text"))
    assert rejection.close_code == CloseCode.UNSUPPORTED_DATA
    assert conn.state is State.CLOSING


# --- hello checks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"v": 2}, ErrorCode.BAD_HELLO),
        ({"v": -1}, ErrorCode.BAD_HELLO),
        ({"platform": "windows"}, ErrorCode.BAD_HELLO),
        ({"app": ""}, ErrorCode.BAD_HELLO),
        ({"device": "has space"}, ErrorCode.BAD_HELLO),
        ({"device": "x" * 129}, ErrorCode.BAD_HELLO),
        ({"token": ""}, ErrorCode.AUTH_FAILED),
        ({}, None),
        ({"platform": "ios"}, None),
    ],
)
def test_hello_problem(changes: dict[str, Any], code: ErrorCode | None) -> None:
    fields = {"v": 1, "app": "app", "device": "dev", "platform": "android", "token": "t"}
    problem = hello_problem(Hello(**{**fields, **changes}))
    assert (problem[0] if problem else None) == code


def test_a_hello_without_a_token_decodes_to_auth_failed() -> None:
    payload = msgpack.packb({"t": "hello", "v": 1, "app": "a", "device": "d", "platform": "ios"})
    hello = ServerConnection().receive(payload)
    assert isinstance(hello, Hello)
    problem = hello_problem(hello)
    assert problem is not None and problem[0] == ErrorCode.AUTH_FAILED


# --- bytes: whole, one at a time, junk ------------------------------------------------

device_frames = st.sampled_from(sorted(DEVICE_FRAMES)).flatmap(
    lambda t: (
        FRAME_STRATEGIES[t].filter(lambda f: not isinstance(f, Hello))
        if t != "hello"
        else st.just(HELLO)
    )
)


def verdicts(conn: ServerConnection, payloads: list[bytes]) -> list[object]:
    """What the connection makes of each payload, up to the first fatal one."""
    out: list[object] = []
    for payload in payloads:
        result = conn.receive(payload)
        out.append(result)
        if isinstance(result, Rejection) and result.fatal:
            break
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(device_frames, max_size=8))
def test_a_tcp_stream_one_byte_at_a_time_gives_what_whole_frames_give(
    sent: list[Frame],
) -> None:
    wire = b"".join(encode_tcp(f) for f in sent)
    whole = verdicts(open_connection(), [encode(f) for f in sent])
    framer = Framer()
    payloads: list[bytes] = []
    for i in range(len(wire)):
        framer.feed(wire[i : i + 1])
        payloads += framer.payloads()
    assert verdicts(open_connection(), payloads) == whole


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_give_a_frame_or_a_rejection_never_a_crash(
    payload: bytes, opened: bool
) -> None:
    conn = open_connection() if opened else ServerConnection()
    result = conn.receive(payload)
    assert isinstance(result, Rejection | Hello | Ack | Bind | Unbind | Ping)
    if isinstance(result, Rejection) and result.fatal:
        assert conn.state is State.CLOSING
        assert result.error.code in set(ErrorCode)


@settings(max_examples=100, deadline=None)
@given(frames, st.binary(min_size=1, max_size=20))
def test_trailing_junk_after_a_frame_is_malformed(frame: Frame, junk: bytes) -> None:
    result = open_connection().receive(encode(frame) + junk)
    assert isinstance(result, Rejection)
    assert result.error.code in {ErrorCode.MALFORMED_FRAME, ErrorCode.FRAME_TOO_LARGE}


def test_a_frame_over_the_limit_is_rejected_before_it_is_read() -> None:
    conn = ServerConnection(max_frame_size=64)
    result = conn.receive(encode(Ack(ids=("m" * 70,))))
    assert isinstance(result, Rejection)
    assert result.error.code == ErrorCode.FRAME_TOO_LARGE
    assert result.close_code == CloseCode.MESSAGE_TOO_BIG


def test_tcp_decoder_and_state_machine_agree_on_a_byte_stream() -> None:
    decoder = TcpDecoder()
    for byte in encode_tcp(Ping()):
        decoder.feed(bytes([byte]))
    assert list(decoder) == [Ping()]

"""Hostile input over real sockets to a real gateway process: fuzzed bytes and frames.

Whatever a device sends, the gateway answers with `error` frames (a reply, or
fatal and then a close) or just closes; it never sends junk, never lets an
exception escape a session, and keeps serving everyone else. The server log
is checked for `session_crashed` and tracebacks at the end of the module.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import Frame, Ping, Pong, encode
from protocol.framing import prefix
from tests.harness import ServerProcess, hello_for, start_server_process

from .common import assert_clean_log, port_of
from .raw import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    connect,
    parse_server_frames,
    read_until_closed,
    send_and_hang_up,
    tcp_frames,
    ws_frame,
    ws_open,
)

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Close codes a gateway may use on a device connection (RFC 6455 section 7.4.1);
# 1005 stands for a close frame without a code (the echo of an empty close).
CLOSE_CODES = {1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1011, 1013}
REPLIES = {"welcome", "pong", "error", "bound", "unbound"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("hostile") / "hostile.db"
    server = start_server_process(db, "--hello-timeout", "2")
    try:
        yield server
        assert server.process.poll() is None, "the gateway died"
        assert_serves(server)
        assert server.terminate() == 0
        assert_clean_log(server)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        server.close()


def assert_serves(server: ServerProcess) -> None:
    sock = connect(port_of(server.tcp))
    payload = encode(hello_for("bystander")) + b""
    sock.sendall(prefix(payload) + payload + prefix(encode(Ping())) + encode(Ping()))
    sock.settimeout(5)
    data = b""
    while len(tcp_frames(data)) < 2:
        chunk = sock.recv(65_536)
        assert chunk, "closed on a well-behaved device"
        data += chunk
    assert isinstance(tcp_frames(data)[1], Pong)
    sock.close()
    response = httpx.get(server.api + "/healthz", timeout=5)
    assert response.status_code == 200


_device_numbers = iter(range(1_000_000))


def fresh_hello() -> bytes:
    return encode(hello_for(f"fuzz-{next(_device_numbers)}"))


def frame_types(frames: list[Frame]) -> list[str]:
    return [f.T for f in frames]


# --- TCP ---------------------------------------------------------------------------

junk_bytes = st.one_of(
    st.binary(max_size=300),  # anything at all
    st.binary(min_size=1, max_size=300).map(lambda b: prefix(b) + b),  # well framed
    st.binary(min_size=1, max_size=40).map(lambda b: prefix(b) + b[: len(b) // 2]),  # truncated
    st.integers(65_537, 2**32 - 1).map(lambda n: struct.pack(">I", n) + b"\x80"),  # oversize
    st.just(struct.pack(">I", 0)),  # zero length
)


@FUZZ
@given(data=junk_bytes)
def test_tcp_junk_before_hello_gets_an_error_or_a_close(server: ServerProcess, data: bytes) -> None:
    sock = connect(port_of(server.tcp))
    send_and_hang_up(sock, data)
    reply, closed = read_until_closed(sock)
    sock.close()
    assert closed, "the gateway kept a connection whose device hung up"
    frames = tcp_frames(reply)
    assert frame_types(frames) in ([], ["error"]), frames


# Values of every MessagePack type, and maps with a known or unknown `t`.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
frame_types_sent = st.sampled_from(
    ["hello", "ack", "bind", "unbind", "ping", "push", "welcome", "bye", "", "ACK", "x" * 300]
)
field_names = st.sampled_from(["v", "app", "device", "platform", "token", "ids", "user", "sig"])


@st.composite
def hostile_maps(draw: st.DrawFn) -> bytes:
    m: dict[Any, Any] = draw(st.dictionaries(field_names | st.text(max_size=6), values, max_size=6))
    if draw(st.booleans()):
        m["t"] = draw(frame_types_sent | values)
    if draw(st.booleans()) and m.get("t") == "ack":
        m["ids"] = draw(st.lists(st.text(max_size=30) | st.integers(0, 2**64 - 1), max_size=50))
    packed: bytes = msgpack.packb(m, use_bin_type=True)
    return packed


hostile_payloads = st.one_of(
    hostile_maps(),
    hostile_maps(),
    values.map(lambda v: msgpack.packb(v, use_bin_type=True)),  # not a map at all
    st.binary(min_size=1, max_size=100),  # not MessagePack
    hostile_maps().map(lambda b: b + b"\x00"),  # trailing junk
    hostile_maps().map(lambda b: b[:-1] if len(b) > 1 else b"\xc1"),  # cut short
)


@FUZZ
@given(payloads=st.lists(hostile_payloads, min_size=1, max_size=5))
def test_tcp_hostile_frames_after_hello_get_replies_or_a_close(
    server: ServerProcess, payloads: list[bytes]
) -> None:
    sock = connect(port_of(server.tcp))
    hello = fresh_hello()
    send_and_hang_up(sock, prefix(hello) + hello + b"".join(prefix(p) + p for p in payloads))
    reply, closed = read_until_closed(sock)
    sock.close()
    assert closed
    types = frame_types(tcp_frames(reply))
    assert types[:1] == ["welcome"], types
    assert set(types) <= REPLIES, types


# --- WebSocket ------------------------------------------------------------------------


@st.composite
def raw_ws_frames(draw: st.DrawFn) -> bytes:
    opcode = draw(st.sampled_from([0x0, 0x1, 0x2, 0x3, 0x7, 0x8, 0x9, 0xA, 0xB, 0xF]))
    payload = draw(st.binary(max_size=200) | hostile_payloads)
    return ws_frame(
        opcode,
        payload,
        fin=draw(st.booleans()),
        mask=draw(st.integers(0, 9).map(lambda n: n > 0)),  # mostly masked
        rsv=draw(st.integers(0, 7).map(lambda n: n if n < 2 else 0)),  # mostly no RSV
    )


@FUZZ
@given(frames=st.lists(raw_ws_frames(), min_size=1, max_size=4), hello_first=st.booleans())
def test_ws_hostile_frames_get_an_rfc_close(
    server: ServerProcess, frames: list[bytes], hello_first: bool
) -> None:
    sock, early = ws_open(port_of(server.ws))
    first = ws_frame(OP_BINARY, fresh_hello()) if hello_first else b""
    send_and_hang_up(sock, first + b"".join(frames))
    reply_bytes, closed = read_until_closed(sock)
    sock.close()
    assert closed
    reply = parse_server_frames(early + reply_bytes)
    assert not reply.truncated
    assert reply.close_code is None or reply.close_code in CLOSE_CODES, reply
    assert set(reply.other) <= {0xA}, reply  # pongs only, besides binary and close
    types = [msgpack.unpackb(m)["t"] for m in reply.messages]
    assert set(types) <= REPLIES, types
    if not hello_first:
        assert set(types) <= {"error"}, types


@pytest.mark.parametrize(
    ("frame", "close_code", "error"),
    [
        (ws_frame(OP_BINARY, encode(Ping()), mask=False), 1002, None),  # unmasked
        (ws_frame(OP_CLOSE, struct.pack(">H", 1000) + b"\xff\xfe"), 1007, None),  # bad UTF-8
        (ws_frame(OP_TEXT, b"\xc3\x28"), 1007, None),  # bad UTF-8 text
        (ws_frame(0x3, b"reserved"), 1002, None),  # reserved data opcode
        (ws_frame(0xB, b""), 1002, None),  # reserved control opcode
        (ws_frame(OP_BINARY, encode(Ping()), rsv=4), 1002, None),  # RSV1, no extension
        (ws_frame(OP_PING, b"p" * 126), 1002, None),  # control frame over 125 bytes
        (ws_frame(OP_PING, b"p", fin=False), 1002, None),  # fragmented control frame
        (ws_frame(OP_CONT, b"orphan"), 1002, None),  # continuation of nothing
        (ws_frame(OP_CLOSE, struct.pack(">H", 1005)), 1002, None),  # reserved close code
        (ws_frame(OP_TEXT, b"hello"), 1003, "text_not_allowed"),
        (ws_frame(OP_BINARY, b"\x00" * 65_537), 1009, "frame_too_large"),
        (ws_frame(OP_BINARY, b"\xc1"), 1008, "malformed_frame"),
    ],
)
@pytest.mark.parametrize("after_hello", [False, True])
def test_ws_framing_errors_close_with_the_rfc_code(
    server: ServerProcess, frame: bytes, close_code: int, error: str | None, after_hello: bool
) -> None:
    sock, early = ws_open(port_of(server.ws))
    first = ws_frame(OP_BINARY, fresh_hello()) if after_hello else b""
    send_and_hang_up(sock, first + frame)
    reply_bytes, closed = read_until_closed(sock)
    sock.close()
    assert closed
    reply = parse_server_frames(early + reply_bytes)
    assert reply.close_code == close_code, reply
    errors = [m for m in (msgpack.unpackb(m) for m in reply.messages) if m["t"] == "error"]
    if error is not None:
        assert [e["code"] for e in errors] == [error], reply
    else:
        assert errors == [], reply


async def test_ws_pings_and_close_racing_the_writer_never_crash(server: ServerProcess) -> None:
    """The reader answers pings and closes while the session's writer streams pushes."""
    key = {"authorization": "Bearer key-app1"}
    for round_ in range(3):
        device = f"racer-{round_}"
        # A tiny receive buffer and no reading yet: the writer blocks mid-send.
        sock, _ = await trio.to_thread.run_sync(partial(ws_open, port_of(server.ws), rcvbuf=4096))
        sock.sendall(ws_frame(OP_BINARY, encode(hello_for(device))))
        async with httpx.AsyncClient(base_url=server.api, headers=key) as client:
            body = {"delivery_type": "android", "target_id": device, "title": "t"}
            for _ in range(40):
                body["content"] = "c" * 3000
                assert (await client.post("/v1/push/simple", json=body)).status_code == 200
        noise = b"".join(ws_frame(OP_PING, b"%d" % i) for i in range(300))
        await trio.to_thread.run_sync(send_and_hang_up, sock, noise + ws_frame(OP_CLOSE, b""))
        _, closed = await trio.to_thread.run_sync(read_until_closed, sock)
        sock.close()
        assert closed
    assert "session_crashed" not in server.log()


def test_atheris_protocol_decoders(tmp_path: Path) -> None:
    """libFuzzer-guided: the sans-IO decoders only ever yield frames or ProtocolError."""
    pytest.importorskip("atheris")
    harness = Path(__file__).with_name("atheris_protocol.py")
    result = subprocess.run(
        [sys.executable, str(harness), "-atheris_runs=30000", "-max_len=512", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=280,  # a safety net under the per-test 300 s: slow on a busy machine
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 30000 in" in result.stderr, result.stderr[-3000:]

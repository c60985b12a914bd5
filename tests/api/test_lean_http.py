"""lean_http: the hot push calls on a plain connection, everything else handed to hypercorn."""

from __future__ import annotations

import json
import socket
import struct

import trio

from gateway.api.lean_http import parse_head
from tests.harness import APP, RunningGateway

SIMPLE = {"delivery_type": "android", "target_id": "dev-1", "title": "t", "content": "c"}


def _request(method: str, path: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: t", f"authorization: Bearer {APP.api_key}"]
    if method == "POST" and "transfer_encoding" not in headers:
        lines.append(f"content-length: {len(body)}")
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _answers(gw: RunningGateway, data: bytes, count: int) -> list[tuple[int, bytes]]:
    """Send `data` at once; read `count` answers (status, body) off the connection."""
    host, port = gw.addresses.api.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(data)
        buffer = b""
        answers: list[tuple[int, bytes]] = []
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                buffer += chunk
                while True:
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buffer[:end].decode("latin-1").lower().split("\r\n")
                    length = next(int(h.split(":")[1]) for h in head if h.startswith("content-l"))
                    if len(buffer) < end + 4 + length:
                        break
                    answers.append((int(head[0].split()[1]), buffer[end + 4 : end + 4 + length]))
                    buffer = buffer[end + 4 + length :]
                if len(answers) >= count:
                    return answers
    return answers


async def test_pipelined_pushes_then_another_route_on_one_connection(gw: RunningGateway) -> None:
    """Two pipelined pushes answered here, then a GET handed to hypercorn mid-connection."""
    body = json.dumps(SIMPLE).encode()
    data = _request("POST", "/v1/push/simple", body) * 2 + _request("GET", "/healthz")
    answers = await _answers(gw, data, 3)
    assert [status for status, _ in answers] == [200, 200, 200]
    assert json.loads(answers[0][1])["status"] == 0
    assert json.loads(answers[2][1])["status"] == "ok"


async def test_a_chunked_push_goes_to_hypercorn_and_is_stored(gw: RunningGateway) -> None:
    body = json.dumps({**SIMPLE, "msg_key": "chunked"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    data = _request("POST", "/v1/push/simple", chunked, transfer_encoding="chunked")
    ((status, answer),) = await _answers(gw, data, 1)
    assert status == 200, answer
    assert json.loads(answer)["msg_key"] == "chunked"


async def test_a_bad_key_closes_the_connection_with_its_body_unread(gw: RunningGateway) -> None:
    data = _request("POST", "/v1/push/simple", b"{}", authorization="Bearer nope")
    data = data.replace(f"authorization: Bearer {APP.api_key}\r\n".encode(), b"")
    answers = await _answers(gw, data + _request("GET", "/healthz"), 2)
    assert [status for status, _ in answers] == [401]  # then the close, not /healthz


def test_parse_head_takes_only_plain_http_1_1() -> None:
    assert parse_head(b"POST /v1/push/simple HTTP/1.1\r\nHost: a\r\nX:  b ") == (
        b"POST",
        b"/v1/push/simple",
        [(b"host", b"a"), (b"x", b"b")],
    )
    assert parse_head(b"POST /v1/push/simple HTTP/1.0\r\nHost: a") is None
    assert parse_head(b"POST /v1/push/simple HTTP/1.1\r\n folded: a") is None
    assert parse_head(b"POST /v1/push/simple HTTP/1.1\r\nHost: a\x00b") is None
    assert parse_head(b"POST  /v1/push/simple HTTP/1.1") is None


async def test_a_client_reset_mid_head_ends_only_its_connection(gw: RunningGateway) -> None:
    """A reset (RST) while the head is read is that connection's end, not the server's."""
    host, port = gw.addresses.api.removeprefix("http://").rsplit(":", 1)
    for _ in range(3):
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"POST /v1/push/simple HTTP/1.1\r\nhost: t\r\n")
        linger = struct.pack("ii", 1, 0)  # close with RST instead of FIN
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        await stream.aclose()
    answers = await _answers(
        gw, _request("POST", "/v1/push/simple", json.dumps(SIMPLE).encode()), 1
    )
    assert [status for status, _ in answers] == [200]

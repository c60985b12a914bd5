"""Raw, blocking sockets for hostile-input tests: hand-made bytes, no client library.

The client library refuses to send broken frames; these helpers send exactly
the bytes a test builds and read back whatever the gateway answers until it
closes the connection.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field

from protocol import Frame, decode
from protocol.framing import Framer

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def connect(port: int, timeout: float = 5.0, *, rcvbuf: int | None = None) -> socket.socket:
    """`rcvbuf` shrinks the receive buffer so a device that does not read backs up fast."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Everything the peer sends until it closes; (data, closed) — False on timeout."""
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    try:
        while chunk := sock.recv(65_536):
            chunks.append(chunk)
    except TimeoutError:
        return b"".join(chunks), False
    except ConnectionResetError:
        pass
    return b"".join(chunks), True


def send_and_hang_up(sock: socket.socket, data: bytes) -> None:
    """Send `data`, then half-close: the gateway sees end of stream after it."""
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the gateway already hung up on an earlier part


def tcp_frames(data: bytes) -> list[Frame]:
    """Decode the gateway's length-prefixed frames (it must never send junk)."""
    framer = Framer()
    framer.feed(data)
    return [decode(p) for p in framer.payloads()]


# --- WebSocket ---------------------------------------------------------------------


def upgrade_request(port: int, *, origin: str | None = None) -> bytes:
    lines = [
        "GET /v1/connect HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_open(port: int, *, rcvbuf: int | None = None) -> tuple[socket.socket, bytes]:
    """A socket past the WebSocket upgrade, and any bytes read after the 101."""
    sock = connect(port, rcvbuf=rcvbuf)
    sock.sendall(upgrade_request(port))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the upgrade: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, rest


def ws_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0
) -> bytes:
    """One client WebSocket frame, masked as RFC 6455 requires unless told otherwise."""
    first = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    mask_bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        header = bytes([first, mask_bit | n])
    elif n < 65_536:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@dataclass
class WsReply:
    messages: list[bytes] = field(default_factory=list)  # binary messages, whole
    close_code: int | None = None
    other: list[int] = field(default_factory=list)  # opcodes of anything else
    truncated: bool = False  # the stream ended inside a frame


def parse_server_frames(data: bytes) -> WsReply:
    """Split what the gateway sent (unmasked frames) into messages and the close code."""
    reply = WsReply()
    partial = b""
    i = 0
    while i < len(data):
        if len(data) - i < 2:
            reply.truncated = True
            break
        b0, b1 = data[i], data[i + 1]
        assert not b1 & 0x80, "a server frame must not be masked"
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            (n,), i = struct.unpack(">H", data[i : i + 2]), i + 2
        elif n == 127:
            (n,), i = struct.unpack(">Q", data[i : i + 8]), i + 8
        if i + n > len(data):
            reply.truncated = True
            break
        payload, i = data[i : i + n], i + n
        opcode = b0 & 0xF
        if opcode in (OP_BINARY, OP_CONT):
            partial += payload
            if b0 & 0x80:
                reply.messages.append(partial)
                partial = b""
        elif opcode == OP_CLOSE:
            # An empty close frame is reported as 1005 ("no status code present").
            reply.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
        else:
            reply.other.append(opcode)
    return reply

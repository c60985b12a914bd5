"""The usual WebSocket upgrade request answered without wsproto's HTTP layer.

Every device connection starts with the same request: `GET /v1/connect
HTTP/1.1` with `Upgrade: websocket`, `Connection: Upgrade`,
`Sec-WebSocket-Version: 13` and a key. wsproto's handshake runs it through
h11's state machine and event objects, the largest cost of a connect after
the store. `accept_upgrade` answers such a request with the 101 itself
(RFC 6455 §4.2.2; no extension and no subprotocol is ever accepted, as with
wsproto here); anything else (another path or method, an origin to refuse,
a missing or odd header) gives None and goes to wsproto, as before, which
answers or refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # h11 refuses these in a head


def _tokens(value: bytes) -> set[bytes]:
    return {t.strip().lower() for t in value.split(b",")}


def accept_upgrade(
    head: bytes, paths: tuple[str, ...], origins: frozenset[str] | None
) -> bytes | None:
    """The 101 answer to a plain upgrade request `head` (up to its blank line), or None."""
    lines = head.split(b"\r\n")
    if any(_CONTROL.search(line) for line in lines):
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
        return None
    if parts[1].split(b"?", 1)[0].decode("latin-1") not in paths:
        return None
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
            return None
        name = name.lower()
        if name in headers:
            return None  # repeated: wsproto decides what it means
        headers[name] = value.strip(b" \t")
    if b"host" not in headers or headers.get(b"sec-websocket-version") != b"13":
        return None
    if b"websocket" not in _tokens(headers.get(b"upgrade", b"")):
        return None
    if b"upgrade" not in _tokens(headers.get(b"connection", b"")):
        return None
    origin = headers.get(b"origin")
    if origins is not None and origin is not None and origin.decode("latin-1") not in origins:
        return None
    key = headers.get(b"sec-websocket-key", b"")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: " + accept + b"\r\n\r\n"
    )

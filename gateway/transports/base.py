"""What a session needs from a transport: whole frame payloads in and out.

Transports know framing (WebSocket messages, TCP length prefixes), never
delivery rules. Framing problems surface as `ProtocolError`, so the session
can answer them with an `error` frame before closing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# WebSocket close codes (RFC 6455 §7.4.1) a session may close with.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009


class Transport(Protocol):
    peer: str
    name: str

    async def receive(self) -> bytes | None:
        """The next frame payload; None once the peer has closed."""
        ...

    async def send(self, payloads: Sequence[bytes]) -> None:
        """Write several frames with as few socket writes as possible."""
        ...

    def wire(self, payloads: Sequence[bytes]) -> bytes:
        """The bytes on the wire for these frames (raises ClosedResourceError if closed)."""
        ...

    def write_nowait(self, data: bytes) -> bool:
        """Queue `data` after anything unsent, writing what the socket takes now.

        True if all of it is out; False if `flush()` must write the rest.
        """
        ...

    async def flush(self) -> None:
        """Write everything `write_nowait` queued; bounded by the caller."""
        ...

    async def close(self, code: int = CLOSE_NORMAL) -> None:
        """Close politely (a WebSocket close frame); bounded by the caller."""
        ...

    async def aclose_forcefully(self) -> None: ...

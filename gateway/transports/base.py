"""What a session needs from a transport: whole frame payloads in and out.

Both transports (WebSocket, length-prefixed TCP) give the session this one
interface, so the session never knows which it has. Transports know framing,
never delivery rules. What can go wrong while receiving, in one vocabulary:

- `protocol.ProtocolError`: the peer's bytes break the framing (an oversize
  frame, a WebSocket text message), so the session can answer with an
  `error` frame before closing;
- `trio.BrokenResourceError`: the peer broke the connection (reset, or
  broken WebSocket framing, already answered with its RFC 6455 close code);
- `trio.ClosedResourceError`: it was closed on our side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from protocol import CloseCode


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

    async def close(self, code: int = CloseCode.NORMAL) -> None:
        """Close politely (a WebSocket close frame with `code`); bounded by the caller."""
        ...

    async def aclose_forcefully(self) -> None: ...

"""Length-prefixed frames over a plain (or TLS) byte stream."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from protocol import CloseCode
from protocol.framing import Framer, prefix

from .output import Output, read_some

RECEIVE_CHUNK = 16_384


class TcpTransport:
    name = "tcp"
    __slots__ = ("_drained", "_framer", "_out", "_stream", "peer")

    def __init__(self, stream: trio.abc.Stream, peer: str, max_frame_size: int) -> None:
        self._stream = stream
        self._framer = Framer(max_frame_size)
        self._out = Output(stream)
        self.peer = peer
        self._drained = False  # the last read came back short: wait before the next

    async def receive(self) -> bytes | None:
        # One payload at a time: frames before a bad length prefix are still
        # handled before the framing error surfaces.
        while (payload := self._framer.next_payload()) is None:
            data = await read_some(self._stream, RECEIVE_CHUNK, wait_first=self._drained)
            if not data:
                return None
            self._drained = len(data) < RECEIVE_CHUNK
            self._framer.feed(data)
        return payload

    def wire(self, payloads: Sequence[bytes]) -> bytes:
        """The bytes of these frames, each after its length prefix."""
        parts: list[bytes] = []
        for payload in payloads:
            parts.append(prefix(payload))
            parts.append(payload)
        return b"".join(parts)

    def write_nowait(self, data: bytes) -> bool:
        return self._out.write_nowait(data)

    async def flush(self) -> None:
        await self._out.flush()

    async def send(self, payloads: Sequence[bytes]) -> None:
        await self._out.send_all(self.wire(payloads))

    async def close(self, code: int = CloseCode.NORMAL) -> None:
        await self._out.flush()
        await self._stream.aclose()

    async def aclose_forcefully(self) -> None:
        await trio.aclose_forcefully(self._stream)

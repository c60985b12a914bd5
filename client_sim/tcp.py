"""The TCP transport: each frame is a 4-byte big-endian length, then the body."""

from __future__ import annotations

import trio

from protocol import Framer, ProtocolError
from protocol.framing import prefix

from .transport import DeviceConnection


class TcpConnection(DeviceConnection):
    """A device connection over length-prefixed TCP (optionally inside TLS).

    TCP has no close codes: `ConnectionClosed.code` is always None here.
    """

    transport = "tcp"
    _lost_code = None

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_frame_size: int,
        write_timeout: float,
        close_timeout: float,
    ) -> None:
        super().__init__(
            stream,
            max_frame_size=max_frame_size,
            write_timeout=write_timeout,
            close_timeout=close_timeout,
        )
        self._framer = Framer(max_frame_size)

    async def aclose(self) -> None:
        self._mark_closed(None, "closed locally")
        await self._close_stream(graceful=True)

    def _wrap_payloads(self, payloads: list[bytes]) -> bytes:
        return b"".join(prefix(payload) + payload for payload in payloads)

    async def _next_payload(self) -> bytes:
        while True:
            try:
                payload = self._framer.next_payload()
            except ProtocolError as exc:
                error = exc
                break
            if payload is not None:
                return payload
            self._raise_if_closed()
            data = await self._receive_some()
            if not data:
                midway = " in the middle of a frame" if self._framer.buffered else ""
                self._mark_closed(None, f"connection closed by the gateway{midway}")
                await self._close_stream(graceful=False)
                raise self._closed_error()
            self._framer.feed(data)
        await self._fail(error)
        raise error

    async def _fail(self, error: ProtocolError) -> None:
        self._mark_closed(None, f"protocol error: {error.code}")
        await self._close_stream(graceful=False)

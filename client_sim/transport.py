"""`DeviceConnection`: one device connection, frames in and out, whatever the transport.

The WebSocket and TCP transports differ only in how a frame body is wrapped on
the wire and how the connection ends; this base class holds everything else:
encoding, the write lock, write deadlines, and the "closed" state.

Concurrency: any number of tasks may send (one lock serialises writes, so the
frames of one `send_frames` call are never interleaved with others); one task
at a time may call `receive_frame`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import ClassVar

import trio

from protocol import Frame, ProtocolError, decode, encode

from .errors import ConnectionClosed

RECEIVE_SIZE = 65_536


class DeviceConnection(abc.ABC):
    """An open connection to the gateway, after the transport handshake."""

    transport: ClassVar[str]
    # The close code reported when the connection breaks without a goodbye.
    _lost_code: ClassVar[int | None]

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        max_frame_size: int,
        write_timeout: float,
        close_timeout: float,
    ) -> None:
        self._stream = stream
        self._max_frame_size = max_frame_size
        self._write_timeout = write_timeout
        self._close_timeout = close_timeout
        self._write_lock = trio.Lock()
        self._closed: ConnectionClosed | None = None
        self._stream_closed = False

    # --- public API -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection ended, whoever ended it."""
        return self._closed is not None

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code once closed (None on TCP or while open)."""
        return None if self._closed is None else self._closed.code

    @property
    def close_reason(self) -> str | None:
        return None if self._closed is None else self._closed.reason

    async def send_frame(self, frame: Frame) -> None:
        """Send one frame. Raises `ConnectionClosed` if the connection is gone."""
        await self._send_payloads([encode(frame)])

    async def send_frames(self, frames: Iterable[Frame]) -> None:
        """Send several frames in one write (nothing for an empty iterable)."""
        payloads = [encode(frame) for frame in frames]
        if payloads:
            await self._send_payloads(payloads)

    async def send_raw(self, data: bytes) -> None:
        """Send `data` as one frame body, unchecked: for testing a gateway with bad input."""
        await self._send_payloads([data])

    async def receive_frame(self) -> Frame:
        """The next frame from the gateway.

        Raises `ConnectionClosed` when the connection ends, and `ProtocolError`
        when the gateway sends something off-contract (the connection is then
        closed: WebSocket code 1002/1003/1009).
        """
        payload = await self._next_payload()
        try:
            return decode(payload, max_size=self._max_frame_size)
        except ProtocolError as exc:
            error = exc
        await self._fail(error)
        raise error

    async def abort(self) -> None:
        """Hang up at once, with no goodbye (no close frame, no TLS close_notify):
        what a network failure looks like to the gateway. Idempotent."""
        self._mark_closed(self._lost_code, "aborted locally")
        await self._close_stream(graceful=False)

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close gracefully, bounded by the close timeout; idempotent.

        The stream is closed when this returns, even if it is cancelled.
        """

    # --- for the transports -----------------------------------------------------

    @abc.abstractmethod
    def _wrap_payloads(self, payloads: list[bytes]) -> bytes:
        """The wire bytes of these frame bodies; called with the write lock held."""

    @abc.abstractmethod
    async def _next_payload(self) -> bytes:
        """The next complete frame body from the gateway."""

    @abc.abstractmethod
    async def _fail(self, error: ProtocolError) -> None:
        """The gateway broke the protocol: say so if the transport can, then close."""

    async def _send_payloads(self, payloads: list[bytes]) -> None:
        async with self._write_lock:
            self._raise_if_closed()
            await self._send_all(self._wrap_payloads(payloads))

    async def _send_all(self, data: bytes) -> None:
        """Write with a deadline; the caller holds the write lock.

        A gateway that stops reading cannot hold a writer forever: after
        `write_timeout` the connection is closed and `ConnectionClosed` raised.
        """
        try:
            with trio.fail_after(self._write_timeout):
                await self._stream.send_all(data)
        except trio.TooSlowError:
            self._mark_closed(self._lost_code, "write timed out")
        except trio.BrokenResourceError:
            self._mark_closed(self._lost_code, "connection lost while writing")
        except trio.ClosedResourceError:
            self._mark_closed(self._lost_code, "closed locally")
        else:
            return
        await self._close_stream(graceful=False)
        raise self._closed_error()

    async def _receive_some(self) -> bytes:
        """Read from the stream; b"" at end of stream."""
        try:
            data = await self._stream.receive_some(RECEIVE_SIZE)
        except trio.BrokenResourceError:
            self._mark_closed(self._lost_code, "connection lost")
        except trio.ClosedResourceError:
            self._mark_closed(self._lost_code, "closed locally")
        else:
            return bytes(data)
        await self._close_stream(graceful=False)
        raise self._closed_error()

    def _mark_closed(self, code: int | None, reason: str) -> None:
        """Record why the connection ended; the first reason wins."""
        if self._closed is None:
            self._closed = ConnectionClosed(code, reason)

    def _closed_error(self) -> ConnectionClosed:
        assert self._closed is not None
        return ConnectionClosed(self._closed.code, self._closed.reason)

    def _raise_if_closed(self) -> None:
        if self._closed is not None:
            raise self._closed_error()

    async def _close_stream(self, *, graceful: bool) -> None:
        """Close the byte stream: TLS close_notify if graceful (bounded), else at once."""
        if self._stream_closed:
            return
        self._stream_closed = True
        if graceful:
            # A cancelled aclose() still closes the stream (Trio guarantees it).
            with trio.move_on_after(self._close_timeout):
                await self._stream.aclose()
        else:
            await trio.aclose_forcefully(self._stream)

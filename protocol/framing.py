"""The TCP transport's length-prefixed framing: a 4-byte big-endian length N
(1 ≤ N ≤ max frame size) followed by N bytes. Sans-IO: feed bytes, take frames."""

from __future__ import annotations

import struct

from .closing import ErrorCode
from .codec import DEFAULT_MAX_FRAME_SIZE, decode, encode
from .errors import ProtocolError
from .frames import Frame

_LENGTH = struct.Struct(">I")
PREFIX_SIZE = _LENGTH.size


def prefix(payload: bytes) -> bytes:
    """The 4-byte length prefix for one frame body."""
    return _LENGTH.pack(len(payload))


def encode_tcp(frame: Frame) -> bytes:
    payload = encode(frame)
    return _LENGTH.pack(len(payload)) + payload


class Framer:
    """Splits a byte stream into frame bodies.

    The declared length is checked against the limit before any of the body
    is buffered, so a peer can never make us hold more than one frame. After a
    `ProtocolError` the stream is unusable: the connection must close.
    """

    __slots__ = ("_broken", "_buffer", "_max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        self._broken: ProtocolError | None = None

    def feed(self, data: bytes | bytearray) -> None:
        if self._broken is not None:
            raise self._broken
        self._buffer += data

    def next_payload(self) -> bytes | None:
        """The next complete frame body, or None if more bytes are needed."""
        if self._broken is not None:
            raise self._broken
        buf = self._buffer
        if len(buf) < PREFIX_SIZE:
            return None
        (length,) = _LENGTH.unpack_from(buf)
        if length == 0:
            self._broken = ProtocolError(ErrorCode.MALFORMED_FRAME, "zero-length frame")
            raise self._broken
        if length > self._max_frame_size:
            self._broken = ProtocolError(
                ErrorCode.FRAME_TOO_LARGE, f"frame of {length} bytes exceeds {self._max_frame_size}"
            )
            raise self._broken
        end = PREFIX_SIZE + length
        if len(buf) < end:
            return None
        payload = bytes(buf[PREFIX_SIZE:end])
        del buf[:end]
        return payload

    def payloads(self) -> list[bytes]:
        """Every complete frame body buffered so far."""
        out: list[bytes] = []
        while (payload := self.next_payload()) is not None:
            out.append(payload)
        return out

    @property
    def buffered(self) -> int:
        return len(self._buffer)


class TcpDecoder:
    """Bytes in, frames out, for the TCP transport."""

    __slots__ = ("_framer", "_max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._framer = Framer(max_frame_size)
        self._max_frame_size = max_frame_size

    def feed(self, data: bytes | bytearray) -> None:
        self._framer.feed(data)

    def __iter__(self) -> TcpDecoder:
        return self

    def __next__(self) -> Frame:
        payload = self._framer.next_payload()
        if payload is None:
            raise StopIteration
        return decode(payload, max_size=self._max_frame_size)

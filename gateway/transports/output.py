"""The one way bytes go out on a connection, in order, mostly without a task switch.

`write_nowait(data)` writes straight to the socket when nothing else is
pending and the socket takes it all (the usual case: one syscall, no await);
whatever the socket does not take is kept, in order, for `flush()`, which one
task at a time awaits. Everything that writes on a connection (the session's
frames, the transport's pongs and closes) goes through the same `Output`, so
writes are never interleaved and always leave in the order they were made.

Only a plain `trio.SocketStream` is written directly; over TLS (or an
in-memory stream in tests) every write goes through `flush()`.
"""

from __future__ import annotations

import os

import trio


class Output:
    __slots__ = ("_direct", "_flushed", "_flushing", "_stream", "_unsent")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._direct = type(stream) is trio.SocketStream
        self._unsent: list[bytes] | None = None
        self._flushing = False
        self._flushed: trio.Event | None = None  # made only when a second flusher waits

    @property
    def pending(self) -> bool:
        """Bytes wait for `flush()` (or a flush is running)."""
        return self._unsent is not None or self._flushing

    def write_nowait(self, data: bytes) -> bool:
        """Queue `data` after anything unsent, writing what the socket takes now.

        True if everything is out; False if `flush()` must write the rest.
        Raises `trio.BrokenResourceError` if the peer is gone and
        `trio.ClosedResourceError` if the stream was closed.
        """
        if self._unsent is not None or self._flushing or not self._direct:
            if self._unsent is None:
                self._unsent = [data]
            else:
                self._unsent.append(data)
            return False
        assert isinstance(self._stream, trio.SocketStream)
        # The descriptor is asked for every time: once the stream is closed its
        # number may already belong to another connection.
        fd = self._stream.socket.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the stream is closed")
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"write failed: {exc}") from exc
        if written == len(data):
            return True
        self._unsent = [data[written:]]
        return False

    async def flush(self) -> None:
        """Write everything queued; if another task is flushing, wait for it instead."""
        if self._flushing:
            while self._flushing:
                if self._flushed is None:
                    self._flushed = trio.Event()
                await self._flushed.wait()
            if self._unsent is None:
                return
        if self._unsent is None:
            await trio.lowlevel.checkpoint()
            return
        self._flushing = True
        try:
            while self._unsent is not None:
                chunks, self._unsent = self._unsent, None
                await self._stream.send_all(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        finally:
            self._flushing = False
            if self._flushed is not None:
                self._flushed.set()
                self._flushed = None

    async def send_all(self, data: bytes) -> None:
        """Write `data` in order after anything pending, and wait until it is out."""
        if not self.write_nowait(data):
            await self.flush()


async def read_some(stream: trio.abc.Stream, max_bytes: int, *, wait_first: bool = False) -> bytes:
    """`stream.receive_some(max_bytes)`, for a plain socket with fewer layers.

    An idle connection waits here in one `wait_readable` instead of the three
    coroutines of SocketStream.receive_some (less memory per connection, less
    work per read). b"" at end of stream; BrokenResourceError if the peer
    broke it, ClosedResourceError if it was closed here.

    `wait_first`: the previous read took everything there was (it came back
    short), so wait for the socket before reading instead of trying a read
    that would most likely fail with EAGAIN (a system call and an exception
    per message saved; the wait returns at once if bytes came meanwhile).
    """
    if type(stream) is not trio.SocketStream:
        return bytes(await stream.receive_some(max_bytes))
    sock = stream.socket
    while True:
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the stream is closed")
        if wait_first:
            wait_first = False
            await trio.lowlevel.wait_readable(sock)
            continue
        try:
            data: bytes | None = os.read(fd, max_bytes)
        except BlockingIOError:
            data = None  # wait outside the except block: an idle connection keeps no traceback
        except OSError as exc:
            raise trio.BrokenResourceError(f"read failed: {exc}") from exc
        if data is None:
            await trio.lowlevel.wait_readable(sock)
            continue
        await trio.lowlevel.checkpoint_if_cancelled()
        return data

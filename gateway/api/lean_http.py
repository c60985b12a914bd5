"""HTTP/1.1 for the hot push calls without hypercorn; anything else is handed to hypercorn.

A backend that pushes one message per call spends most of the gateway's
event loop in hypercorn and h11 (three writes per answer, an ASGI task per
request, h11's state machine): ~1 ms per call of the event loop's time,
against ~0.2 ms for the push itself. So a plain (non-TLS) API connection
starts here: each request head is read and, when it is a plain
`POST /v1/push/simple` or `/v1/push/multiple` with a Content-Length (no
`Expect`, no `Transfer-Encoding`, no query), it is answered by lean.py's
handler and written in one write, keeping the connection alive. The first
request that is anything else (another route or method, a chunked body,
HTTP/1.0, a head too large or malformed) is handed, with every byte read so
far, to hypercorn, which serves the connection from then on exactly as
before. The limits are the same as hypercorn's: the head within the idle
timeout and `h11_max_incomplete_size`, the body by lean.py's checks, each
write within the send timeout (DeadlineStream).
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import trio

from .lean import ROUTES, Headers, LeanPushRoutes

READ_CHUNK = 65_536
_HOT_METHOD = b"POST"
_REFUSED_HEADERS = frozenset((b"transfer-encoding", b"expect", b"upgrade"))
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # never in a head line (h11 refuses them)


class Handoff(Exception):
    """The connection goes to hypercorn, from `data` (bytes read and not yet served)."""

    def __init__(self, data: bytes) -> None:
        super().__init__("handed to hypercorn")
        self.data = data


class _Date:
    """The Date header's value, formatted once per second."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


_DATE = _Date()


def parse_head(head: bytes) -> tuple[bytes, bytes, Headers] | None:
    """(method, target, headers) of a plain HTTP/1.1 request head; None for anything else."""
    if _CONTROL.search(head.replace(b"\r\n", b"")):
        return None
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    headers: Headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name or b"\t" in name:
            return None  # malformed, or an obsolete line folding: hypercorn's to refuse
        headers.append((name.lower(), value.strip(b" \t")))
    return parts[0], parts[1], headers


class LeanHttp:
    """Serves the hot push requests of one plain connection after another."""

    def __init__(
        self,
        routes: LeanPushRoutes,
        *,
        head_timeout: float,
        max_head: int,
        waiting: Any,
        handling: Any,
    ) -> None:
        self.routes = routes
        self.head_timeout = head_timeout
        self.max_head = max_head
        self._waiting = waiting  # (peer) -> None: the connection waits on its client
        self._handling = handling  # (peer) -> None: a request of it is in a handler
        self.stopping = False
        self._idle: set[trio.CancelScope] = set()

    def stop(self) -> None:
        """Shutdown: connections waiting for their next request close now."""
        self.stopping = True
        for scope in list(self._idle):
            scope.cancel()

    async def serve(self, stream: trio.abc.Stream, peer: Any) -> None:
        """Answer hot requests until the connection ends; Handoff for anything else."""
        buffer = bytearray()
        while not self.stopping:
            head = await self._head(stream, buffer)
            if head is None:
                return
            request = parse_head(bytes(buffer[:head]))
            route = None if request is None else self._route(*request)
            if request is None or route is None:
                raise Handoff(bytes(buffer))
            del buffer[: head + 4]
            keep = await self._serve_one(stream, peer, buffer, route, request[2])
            if not keep:
                return

    def _route(self, method: bytes, target: bytes, headers: Headers) -> Any:
        if method != _HOT_METHOD:
            return None
        route = ROUTES.get(target.decode("latin-1"))
        if route is None:
            return None
        lengths = 0
        host = False
        for name, value in headers:
            if name in _REFUSED_HEADERS:
                return None
            if name == b"content-length":
                lengths += 1
                if not value.isdigit():
                    return None
            elif name == b"host":
                host = True
        return route if lengths == 1 and host else None

    async def _head(self, stream: trio.abc.Stream, buffer: bytearray) -> int | None:
        """Where the next head ends in `buffer` (read as needed); None: the connection ends."""
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            return end
        with trio.move_on_after(self.head_timeout) as scope:
            self._idle.add(scope)
            try:
                while end < 0:
                    if len(buffer) > self.max_head:
                        raise Handoff(bytes(buffer))  # hypercorn refuses it as before
                    data = await stream.receive_some(READ_CHUNK)
                    if not data:
                        return None
                    start = max(0, len(buffer) - 3)
                    buffer += data
                    end = buffer.find(b"\r\n\r\n", start)
            finally:
                self._idle.discard(scope)
        return None if scope.cancelled_caught else end

    async def _serve_one(
        self,
        stream: trio.abc.Stream,
        peer: Any,
        buffer: bytearray,
        route: Any,
        headers: Headers,
    ) -> bool:
        """One hot request: answered in one write; whether the connection stays open."""
        remaining = next(int(v) for n, v in headers if n == b"content-length")
        waiting, handling = self._waiting, self._handling

        async def receive() -> dict[str, Any]:
            nonlocal remaining
            if buffer:
                chunk = bytes(buffer[:remaining])
                del buffer[: len(chunk)]
            elif remaining:
                waiting(peer)
                try:
                    chunk = bytes(await stream.receive_some(min(READ_CHUNK, remaining)))
                finally:
                    handling(peer)
                if not chunk:
                    return {"type": "http.disconnect"}
            else:
                chunk = b""
            remaining -= len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": remaining > 0}

        def at_hand() -> bytes | None:
            nonlocal remaining
            if len(buffer) < remaining:
                return None
            whole = bytes(buffer[:remaining])
            del buffer[:remaining]
            remaining = 0
            return whole

        handling(peer)
        try:
            status, out, body = await self.routes.respond(route, headers, receive, at_hand)
            # Not all of the body read (a 401, a 413): it cannot be skipped, so close.
            keep = remaining == 0 and not any(
                n == b"connection" and v.lower() == b"close" for n, v in (*headers, *out)
            )
            if not keep and not any(n == b"connection" for n, _ in out):
                out.append((b"connection", b"close"))
            await stream.send_all(_response(status, out, body))
        finally:
            waiting(peer)
        return keep


def _response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    phrase = HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
    lines.append(b"date: " + _DATE.value() + b"\r\nserver: pushgate\r\n\r\n")
    lines.append(body)
    return b"".join(lines)


class ReplayStream(trio.abc.HalfCloseableStream):
    """`stream` with `data` (read already, not served) received again first."""

    def __init__(self, stream: Any, data: bytes) -> None:
        self._stream = stream
        self._data = data
        self.socket = stream.socket  # hypercorn reads the peer address from it

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._data:
            size = len(self._data) if max_bytes is None else max_bytes
            data, self._data = self._data[:size], self._data[size:]
            await trio.lowlevel.checkpoint()
            return data
        received: bytes | bytearray = await self._stream.receive_some(max_bytes)
        return received

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

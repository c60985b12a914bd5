"""Serving the API: hypercorn's HTTP/1.1 protocol per connection, on our own accept loop.

What hypercorn gives is used as it is: a request head must arrive within
`keep_alive_timeout` of the connection opening or of the previous answer (the
idle timer runs until a whole head is parsed), heads are capped at
`h11_max_incomplete_size`, and a body is buffered at most `max_app_queue_size`
chunks ahead of the handler. What it lacks is added here:

- a cap on API connections, apart from the devices' (`--max-api-connections`);
  at the cap the connection that has waited longest on its client (for a
  request head, or for body bytes) is closed to make room, so 1,100 slow
  clients cannot keep /healthz or a push out; when every connection is busy in
  a handler the newcomer gets a 503 at once;
- a deadline on every write (`send_timeout`): a client that stops reading
  its answer is cut off instead of holding a connection forever (hypercorn
  shields its writes from cancellation, so the deadline sits under it);
- the body deadline is json_body's (`--http-body-timeout`, 408).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState

from ..transports.output import Output, read_some
from .lean import LeanPushRoutes
from .lean_http import Handoff, LeanHttp, ReplayStream

log = logging.getLogger("pushgate.http")

Peer = tuple[str, int]
RECEIVE_CHUNK = 65_536  # trio's receive_some default
MAX_REFUSING = 64  # 503 answers being written at once; past it a newcomer is just closed
REFUSAL_TIMEOUT = 1.0
BUSY_BODY = json.dumps(
    {"error": {"code": "server_busy", "message": "too many API connections; retry later"}}
).encode()
BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: "
    + str(len(BUSY_BODY)).encode()
    + b"\r\n\r\n"
    + BUSY_BODY
)


@dataclass(eq=False)
class ApiConnection:
    peer: Peer
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    in_handler: int = 0  # requests being handled and not waiting for the client


class ApiConnections:
    """Live API connections, at most `limit`; the ones waiting on their client are
    kept in the order they started waiting, oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_peer: dict[Peer, ApiConnection] = {}
        self._waiting: dict[Peer, ApiConnection] = {}  # insertion order: oldest first
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._by_peer)

    def admit(self, peer: Peer) -> ApiConnection | None:
        """A slot for a new connection (closing the longest-waiting one at the cap),
        or None when every connection is busy in a handler."""
        if len(self._by_peer) >= self.limit:
            if not self._waiting:
                self.refused += 1
                return None
            victim = next(iter(self._waiting.values()))
            victim.scope.cancel()
            self.release(victim)
            self.evicted += 1
            if self.evicted % 1000 == 1:
                log.warning(
                    "event=api_connection_evicted reason=max_api_connections limit=%d"
                    " evicted_total=%d",
                    self.limit,
                    self.evicted,
                )
        conn = ApiConnection(peer)
        self._by_peer[peer] = conn
        self._waiting[peer] = conn
        return conn

    def release(self, conn: ApiConnection) -> None:
        if self._by_peer.get(conn.peer) is conn:
            del self._by_peer[conn.peer]
            self._waiting.pop(conn.peer, None)

    def handling(self, peer: Peer) -> None:
        """A request of `peer` runs in a handler (or is answered): not evictable."""
        conn = self._by_peer.get(peer)
        if conn is not None:
            conn.in_handler += 1
            self._waiting.pop(peer, None)

    def waiting(self, peer: Peer) -> None:
        """`peer`'s connection waits on its client again (body bytes, next request)."""
        conn = self._by_peer.get(peer)
        if conn is not None:
            conn.in_handler = max(0, conn.in_handler - 1)
            if not conn.in_handler:
                self._waiting.pop(peer, None)
                self._waiting[peer] = conn


class TrackedApp:
    """hypercorn's app wrapper: tells ApiConnections when a request is in a handler,
    and when its handler waits for body bytes from the client."""

    def __init__(self, app: Callable[..., Awaitable[None]], connections: ApiConnections) -> None:
        self.app = app
        self.connections = connections

    async def __call__(
        self, scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any
    ) -> None:
        if scope["type"] != "http" or scope.get("client") is None:
            await self.app(scope, receive, send)
            return
        peer = tuple(scope["client"][:2])
        connections = self.connections

        async def tracked_receive() -> Any:
            connections.waiting(peer)
            try:
                return await receive()
            finally:
                connections.handling(peer)

        connections.handling(peer)
        try:
            await self.app(scope, tracked_receive, send)
        finally:
            connections.waiting(peer)


class DeadlineStream(trio.abc.HalfCloseableStream):
    """A socket stream whose every write must finish within `send_timeout`.

    An answer the socket takes at once is written with one system call and
    no task switch (transports/output.py, as a device's frames); the first
    read after an answer waits for the socket first (a keep-alive client
    sends its next request only after reading our answer, so a read tried at
    once would fail). Other reads are tried first: a body often follows its
    head in a segment of its own, already there.
    """

    def __init__(self, stream: trio.SocketStream, send_timeout: float) -> None:
        self._stream = stream
        self.socket = stream.socket  # hypercorn reads the peer address from it
        self._send_timeout = send_timeout
        self._out = Output(stream)
        self._answered = False  # written since the last read

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._answered = True
        if self._out.write_nowait(bytes(data)):
            await trio.lowlevel.checkpoint_if_cancelled()
            return
        with trio.move_on_after(self._send_timeout):
            await self._out.flush()
            return
        await trio.aclose_forcefully(self._stream)
        raise trio.BrokenResourceError("the client did not read its answer in time")

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        wait_first, self._answered = self._answered, False
        size = RECEIVE_CHUNK if max_bytes is None else max_bytes
        return await read_some(self._stream, size, wait_first=wait_first)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


def _peer(stream: trio.SocketStream) -> Peer | None:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return None
    return str(host), int(port)


class ApiServer:
    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        config: Config,
        *,
        max_connections: int,
        send_timeout: float,
        tls: ssl.SSLContext | None = None,
        lean: LeanPushRoutes | None = None,
    ) -> None:
        self.config = config
        self.connections = ApiConnections(max_connections)
        self.app = TrackedApp(app, self.connections)
        # Plain connections start on lean_http (the hot push calls), then hypercorn.
        self.lean = (
            None
            if lean is None or tls is not None
            else LeanHttp(
                lean,
                head_timeout=config.keep_alive_timeout,
                max_head=config.h11_max_incomplete_size,
                waiting=self.connections.waiting,
                handling=self.connections.handling,
            )
        )
        self.send_timeout = send_timeout
        self.tls = tls
        self.context = WorkerContext(None)
        self._refusing = 0

    async def serve(
        self,
        listeners: list[trio.SocketListener],
        stop: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until `stop`; then requests in flight get `graceful_timeout` to finish."""
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                accepting.start_soon(self._accept, listeners, connections)
                task_status.started()
                await stop.wait()
                accepting.cancel_scope.cancel()
            # Idle keep-alive connections close now; busy ones after their answer.
            if self.lean is not None:
                self.lean.stop()
            await self.context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + self.config.graceful_timeout

    async def _accept(self, listeners: list[trio.SocketListener], nursery: trio.Nursery) -> None:
        await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _handle(self, stream: trio.SocketStream) -> None:
        peer = _peer(stream)
        conn = None if peer is None else self.connections.admit(peer)
        try:
            if conn is None:
                await self._refuse(stream)
                return
            with conn.scope:
                timed = DeadlineStream(stream, self.send_timeout)
                byte_stream: Any = timed
                if self.lean is not None:
                    try:
                        await self.lean.serve(timed, peer)
                        return
                    except Handoff as handoff:
                        byte_stream = ReplayStream(timed, handoff.data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        return  # the client went away (reset, or did not read in time)
                if self.tls is not None:
                    byte_stream = trio.SSLStream(
                        timed, self.tls, server_side=True, https_compatible=True
                    )
                state = ConnectionState({})
                await TCPServer(self.app, self.config, self.context, state, byte_stream).run()
        finally:
            if conn is not None:
                self.connections.release(conn)
            await trio.aclose_forcefully(stream)

    async def _refuse(self, stream: trio.SocketStream) -> None:
        if self.connections.refused % 1000 == 1:
            log.warning(
                "event=api_connection_refused limit=%d refused_total=%d",
                self.connections.limit,
                self.connections.refused,
            )
        if self._refusing >= MAX_REFUSING or self.tls is not None:
            return
        self._refusing += 1
        try:
            with trio.move_on_after(REFUSAL_TIMEOUT):
                await stream.send_all(BUSY_ANSWER)
        except trio.BrokenResourceError:
            pass
        finally:
            self._refusing -= 1

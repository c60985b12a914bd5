"""A small TCP fault proxy for tests: sits between devices and the gateway.

    proxy = FaultProxy("127.0.0.1", gateway_port)
    await nursery.start(proxy.run)          # listens on 127.0.0.1:proxy.port
    proxy.set_mode(Mode.BLACKHOLE)          # every live and future connection

Modes (the network as the device sees it):

- PASS: bytes flow both ways.
- DELAY: each chunk is held `delay` seconds before it is forwarded (both ways).
- TRICKLE: chunks are forwarded `trickle_bytes` at a time, `trickle_interval`
  apart (both ways): a very slow link.
- STALL: the device stops reading: nothing is forwarded gateway -> device and
  the proxy stops reading from the gateway, so the gateway's socket buffers
  fill (the upstream socket has a tiny receive buffer). Device -> gateway
  still flows (its pings arrive).
- BLACKHOLE: half-open TCP, a cable pulled: nothing flows either way, no FIN,
  no RST; both ends believe the connection is up.
- RESET: every live connection is reset (RST both ways); new ones are reset
  as soon as they are accepted.

Changing the mode applies at once to connections already open.
"""

from __future__ import annotations

import enum
import socket
import struct
from dataclasses import dataclass, field

import trio

UPSTREAM_RCVBUF = 4096  # small, so a stalled device backs up into the gateway fast
CHUNK = 65_536
LINGER = 2.0  # after one side's orderly close, how long the other direction may drain


class Mode(enum.Enum):
    PASS = "pass"
    DELAY = "delay"
    TRICKLE = "trickle"
    STALL = "stall"
    BLACKHOLE = "blackhole"
    RESET = "reset"


_BLOCKED = {
    Mode.STALL: {"down"},
    Mode.BLACKHOLE: {"up", "down"},
}


@dataclass(eq=False)
class _Link:
    device: trio.SocketStream
    gateway: trio.SocketStream
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    forwarded: dict[str, int] = field(default_factory=lambda: {"up": 0, "down": 0})


def _reset(stream: trio.SocketStream) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    try:
        stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    stream.socket.close()


class FaultProxy:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        delay: float = 0.05,
        trickle_bytes: int = 7,
        trickle_interval: float = 0.002,
    ) -> None:
        self.upstream = (host, port)
        self.delay = delay
        self.trickle_bytes = trickle_bytes
        self.trickle_interval = trickle_interval
        self.mode = Mode.PASS
        self.port = 0
        self.links: set[_Link] = set()
        self.accepted = 0
        self._changed = trio.Event()

    def url(self, scheme: str) -> str:
        suffix = "/v1/connect" if scheme in ("ws", "wss") else ""
        return f"{scheme}://127.0.0.1:{self.port}{suffix}"

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode is Mode.RESET:
            for link in list(self.links):
                self._reset_link(link)
        self._changed.set()
        self._changed = trio.Event()

    def _reset_link(self, link: _Link) -> None:
        self.links.discard(link)
        link.scope.cancel()
        _reset(link.device)
        _reset(link.gateway)

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            task_status.started(self.port)
            await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)

    async def _connect_upstream(self) -> trio.SocketStream:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)
        try:
            await sock.connect(self.upstream)
        except BaseException:
            sock.close()
            raise
        return trio.SocketStream(sock)

    async def _handle(self, device: trio.SocketStream) -> None:
        self.accepted += 1
        if self.mode is Mode.RESET:
            _reset(device)
            return
        try:
            gateway = await self._connect_upstream()
        except OSError:
            _reset(device)
            return
        link = _Link(device, gateway)
        self.links.add(link)
        try:
            with link.scope:
                async with trio.open_nursery() as nursery:
                    done = nursery.cancel_scope
                    nursery.start_soon(self._pump, link, device, gateway, "up", done)
                    nursery.start_soon(self._pump, link, gateway, device, "down", done)
        finally:
            # Synchronous: under an outer cancellation an awaited close would
            # raise Cancelled and leave the second socket open.
            self.links.discard(link)
            device.socket.close()
            gateway.socket.close()

    async def _gate(self, direction: str) -> None:
        while direction in _BLOCKED.get(self.mode, ()):
            await self._changed.wait()

    async def _pump(
        self,
        link: _Link,
        src: trio.SocketStream,
        dst: trio.SocketStream,
        direction: str,
        done: trio.CancelScope,
    ) -> None:
        try:
            while True:
                await self._gate(direction)
                data = await src.receive_some(CHUNK)
                if not data:
                    # An orderly close goes on as one, as between the peers themselves:
                    # half-close the other side and let the other direction drain a
                    # moment. Closing both sockets here would reset a device whose ack
                    # was still arriving, and its kernel would drop the gateway's last
                    # frames (`bye shutdown`) unread.
                    try:
                        await dst.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                        done.cancel()
                        return
                    done.deadline = min(done.deadline, trio.current_time() + LINGER)
                    return
                await self._gate(direction)  # data read just before a blackhole: hold it
                mode = self.mode
                if mode is Mode.DELAY:
                    await trio.sleep(self.delay)
                if mode is Mode.TRICKLE:
                    for i in range(0, len(data), self.trickle_bytes):
                        await dst.send_all(data[i : i + self.trickle_bytes])
                        await trio.sleep(self.trickle_interval)
                else:
                    await dst.send_all(data)
                link.forwarded[direction] += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            done.cancel()  # a side broke: the link ends (both sockets closed)

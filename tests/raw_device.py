"""A raw TCP device: a tiny receive buffer, and reads only when told to.

What a phone that stops reading looks like from the gateway: its socket
fills after a few KiB, so what the gateway queues stays in its outbox.
"""

from __future__ import annotations

import socket

import trio

from gateway.settings import AppDeclaration
from protocol import Frame, Push, TcpDecoder, Welcome, encode_tcp
from tests.harness import APP, hello_for


class RawTcpDevice:
    """A TCP device with a tiny receive buffer that reads only when told to."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = TcpDecoder()

    @classmethod
    async def connect(
        cls, url: str, device: str, *, app: AppDeclaration = APP, rcvbuf: int | None = 4096
    ) -> RawTcpDevice:
        """Connect and say hello; `rcvbuf=None` keeps the system's receive buffer."""
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        sock = trio.socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        await sock.connect((host, int(port)))
        raw = cls(trio.SocketStream(sock))
        await raw.stream.send_all(encode_tcp(hello_for(device, app=app)))
        assert isinstance(await raw.next_frame(), Welcome)
        return raw

    async def next_frame(self) -> Frame:
        with trio.fail_after(10):
            while True:
                for frame in self.decoder:
                    return frame
                data = await self.stream.receive_some(65_536)
                assert data, "the gateway closed the connection"
                self.decoder.feed(data)

    async def read_until(self, message_id: str) -> list[Push]:
        pushes: list[Push] = []
        while not pushes or pushes[-1].id != message_id:
            try:
                frame = await self.next_frame()
            except trio.TooSlowError:
                raise AssertionError(f"stalled after {len(pushes)} pushes") from None
            assert isinstance(frame, Push), frame
            pushes.append(frame)
        return pushes

    async def send(self, *frames: Frame) -> None:
        await self.stream.send_all(b"".join(encode_tcp(f) for f in frames))

    async def aclose(self) -> None:
        await self.stream.aclose()

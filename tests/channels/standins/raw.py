"""A server that answers every HTTP/1.1 request with fixed bytes, then closes:
for answers no well-behaved server gives (a body cut short, a bogus status line)."""

from __future__ import annotations

from functools import partial

import trio


class RawServer:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.port = 0
        self.requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            serve = partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1")
            listeners = await nursery.start(serve)
            self.port = listeners[0].socket.getsockname()[1]
            task_status.started()

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            with trio.move_on_after(10):
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        return
                    body += chunk
                self.requests += 1
                await stream.send_all(self.answer)
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

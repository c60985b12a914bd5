"""Device worker, pushgate side: many devices (WebSocket or TCP) on one uvloop event loop.

    python -m bench.pushgate_devices --url ws://127.0.0.1:PORT/v1/connect --first 0 --count 2500
    python -m bench.pushgate_devices --url tcp://127.0.0.1:PORT --first 0 --count 2500

Each device is a `PushgateLink` (bench/pushgate_link.py): upgrade (WebSocket),
hello → welcome, then every read's pushes are acked at once in one `ack`
frame, with no timer: the same discipline and the same event loop as the
MQTT side's devices. Commands on stdin: see bench/device_worker.py.
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import urlsplit

import uvloop

from protocol import Frame, Hello, Push, Welcome, device_token

from .common import APP_ID, SECRET, device_name
from .device_worker import HANDSHAKE_TIMEOUT, DeviceWorker, Link, worker_arguments
from .pushgate_link import LinkClosed, OnOther, OnPush, PushgateLink

TRANSPORTS = ("ws", "tcp")


class PushgateWorker(DeviceWorker):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        parts = urlsplit(args.url)
        if parts.scheme not in TRANSPORTS or not parts.hostname or not parts.port:
            raise ValueError(f"--url: ws://HOST:PORT/PATH or tcp://HOST:PORT (got {args.url!r})")
        self.websocket = parts.scheme == "ws"
        self.host, self.port = parts.hostname, parts.port
        self.netloc, self.target = parts.netloc, parts.path or "/"

    def on_push(self, index: int) -> OnPush:
        def on_push(frame: Push) -> None:
            self.received(frame.id, frame.ext)

        return on_push

    def on_other(self, index: int) -> OnOther:
        def on_other(frame: Frame) -> None:
            self.tally.error(f"{device_name(index)}: unexpected {frame!r}"[:200])

        return on_other

    async def open_device(self, index: int) -> Link:
        source = self.args.source
        loop = asyncio.get_running_loop()
        _transport, link = await asyncio.wait_for(
            loop.create_connection(
                lambda: PushgateLink(
                    websocket=self.websocket,
                    on_push=self.on_push(index),
                    on_other=self.on_other(index),
                    after_read=self.after_read,
                ),
                self.host,
                self.port,
                local_addr=(source, 0) if source else None,
            ),
            HANDSHAKE_TIMEOUT,
        )
        return link

    async def greet(self, index: int, link: Link) -> None:
        assert isinstance(link, PushgateLink)
        await link.upgrade(self.netloc, self.target, HANDSHAKE_TIMEOUT)
        name = device_name(index)
        token = device_token(SECRET, APP_ID, name)
        hello = Hello(v=1, app=APP_ID, device=name, platform="android", token=token)
        answer = await link.hello(hello, HANDSHAKE_TIMEOUT)
        if not isinstance(answer, Welcome):
            raise LinkClosed(f"{name}: expected welcome, got {answer!r}"[:200])


def main() -> None:
    parser = worker_arguments(__doc__)
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/v1/connect or tcp://HOST:PORT")
    try:
        worker = PushgateWorker(parser.parse_args())
    except ValueError as exc:
        parser.error(str(exc))
    uvloop.run(worker.run())


if __name__ == "__main__":
    main()

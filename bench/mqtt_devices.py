"""Device worker, Mosquitto side: many MQTT devices on one uvloop event loop.

    python -m bench.mqtt_devices --port PORT --first 0 --count 2500

Each device is an `MqttLink` (bench/mqtt_link.py: MQTT 3.1.1,
clean_session=false, client ID = device name) subscribed at QoS 1 to its own
topic. Every PUBLISH is PUBACKed (one PUBACK per message), and the PUBACKs of
one read leave in one write: the same discipline as the pushgate side's one
`ack` frame per read. Commands on stdin: see bench/device_worker.py.
"""

from __future__ import annotations

import argparse

import uvloop

from protocol import ProtocolError, Push, decode

from .common import device_name, mqtt_topic
from .device_worker import HANDSHAKE_TIMEOUT, DeviceWorker, Link, worker_arguments
from .mqtt_link import MqttLink, OnPublish, open_link


class MqttWorker(DeviceWorker):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.subscribed: set[int] = set()

    def on_publish(self, index: int) -> OnPublish:
        def on_publish(payload: bytes) -> None:
            try:
                frame = decode(payload)
            except ProtocolError as exc:
                self.tally.error(f"{device_name(index)}: bad payload {exc}")
                return
            if isinstance(frame, Push):
                self.received(frame.id, frame.ext)

        return on_publish

    async def open_device(self, index: int) -> Link:
        args = self.args
        return await open_link(
            args.host,
            args.port,
            source=args.source,
            on_publish=self.on_publish(index),
            after_read=self.after_read,
            timeout=HANDSHAKE_TIMEOUT,
        )

    async def greet(self, index: int, link: Link) -> None:
        assert isinstance(link, MqttLink)
        name = device_name(index)
        present = await link.handshake(name, clean_session=False, timeout=HANDSHAKE_TIMEOUT)
        if not (present and index in self.subscribed):
            await link.subscribe(mqtt_topic(index), HANDSHAKE_TIMEOUT)
            self.subscribed.add(index)


def main() -> None:
    parser = worker_arguments(__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(MqttWorker(parser.parse_args()).run())


if __name__ == "__main__":
    main()

"""Publisher, Mosquitto side: one paho client publishing QoS 1 messages.

    python -m bench.mqtt_publisher --port PORT --devices 5000

`publish {start, count, rate}`: message i goes to the topic of device
`i % devices`, its payload the same MessagePack `push` frame pushgate would
send (with the publish time in `ext`). Answers `published` once the broker has
PUBACKed every message, i.e. taken responsibility for it.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import sys
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from .common import mqtt_payload, mqtt_topic, now_ns
from .control import answer

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class Publisher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.selector = selectors.DefaultSelector()
        self.acked = 0
        self.connected = False
        self.running = True
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-publisher-{os.getpid()}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.max_inflight_messages_set(0)  # 0 = no limit: pipeline freely
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self.on_connect
        self.client.on_publish = self.on_publish
        self.mask = 0

    def on_connect(self, *args: Any) -> None:
        self.connected = True

    def on_publish(self, *args: Any) -> None:
        self.acked += 1

    def watch(self) -> None:
        sock = self.client.socket()
        assert sock is not None
        mask = READ | WRITE if self.client.want_write() else READ
        if mask != self.mask:
            if self.mask:
                self.selector.modify(sock, mask)
            else:
                self.selector.register(sock, mask)
            self.mask = mask

    def poll(self, timeout: float) -> None:
        for _key, mask in self.selector.select(timeout):
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            if mask & READ:
                rc = self.client.loop_read()
            if mask & WRITE and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self.client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publisher lost its connection: {rc}")
        self.watch()

    def publish(self, start: int, count: int, rate: float) -> dict[str, Any]:
        devices = self.args.devices
        client = self.client
        self.acked = 0
        started_ns = now_ns()
        t0 = time.monotonic()
        sent = 0
        while sent < count:
            due = count if rate <= 0 else min(count, int((time.monotonic() - t0) * rate) + 1)
            while sent < due:
                i = start + sent
                client.publish(mqtt_topic(i % devices), mqtt_payload(i, now_ns()), qos=1)
                sent += 1
                if sent % 256 == 0:
                    self.poll(0)  # read PUBACKs as we go
            self.poll(0 if rate <= 0 else 0.002)
        deadline = time.monotonic() + 600
        while self.acked < count and time.monotonic() < deadline:
            self.poll(0.05)
        return {
            "count": count,
            "acked_by_broker": self.acked,
            "started_ns": started_ns,
            "seconds": time.monotonic() - t0,
            "errors": 0 if self.acked == count else count - self.acked,
        }

    def run(self) -> None:
        self.client.connect(self.args.host, self.args.port, keepalive=3600)
        self.watch()
        while not self.connected:
            self.poll(0.1)
        answer("ready")
        buffer = b""
        while self.running:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not line.strip():
                    continue
                command = json.loads(line)
                if command["cmd"] == "publish":
                    answer(
                        "published",
                        **self.publish(command["start"], command["count"], command["rate"]),
                    )
                elif command["cmd"] == "quit":
                    self.running = False
                    break
        self.client.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, required=True)
    Publisher(parser.parse_args()).run()


if __name__ == "__main__":
    main()

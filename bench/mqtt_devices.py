"""Device worker, Mosquitto side: many paho-mqtt clients on one epoll loop.

    python -m bench.mqtt_devices --host 127.0.0.1 --port PORT --first 0 --count 2500

Each device is a paho `Client` (MQTT 3.1.1, clean_session=false, client ID =
device name) subscribed with QoS 1 to its own topic. paho is driven through
its documented external-loop API (`socket()`, `loop_read()`,
`loop_write()`, `want_write()`), so thousands of clients share one selector
and no thread: paho's own `loop_start()` would need a thread per client. A
device's PUBACK, which paho writes as soon as `on_message` returns, is its
ack. Commands on stdin as in bench/ws_devices.py.
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

from protocol import ProtocolError, Push, decode

from .common import SENT_KEY, device_name, mqtt_topic
from .control import answer
from .tally import Tally

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
KEEPALIVE = 3600


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, mqtt.Client] = {}
        self.masks: dict[int, int] = {}  # device index -> registered selector mask
        self.ready: set[int] = set()
        self.subscribed: set[int] = set()
        self.tally = Tally()
        self.running = True
        self.stdin_buffer = b""

    # --- paho callbacks ------------------------------------------------------

    def on_connect(
        self,
        client: mqtt.Client,
        index: int,
        flags: mqtt.ConnectFlags,
        reason: Any,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            self.tally.error(f"{device_name(index)}: CONNACK {reason}")
            return
        if index in self.subscribed and flags.session_present:
            self.ready.add(index)  # the broker kept the session and its subscription
        else:
            client.subscribe(mqtt_topic(index), qos=1)

    def on_subscribe(
        self, client: mqtt.Client, index: int, mid: int, reasons: Any, properties: Any
    ) -> None:
        self.subscribed.add(index)
        self.ready.add(index)

    def on_message(self, client: mqtt.Client, index: int, message: mqtt.MQTTMessage) -> None:
        try:
            frame = decode(bytes(message.payload))
        except ProtocolError as exc:
            self.tally.error(f"{device_name(index)}: bad payload {exc}")
            return
        if isinstance(frame, Push):
            sent = frame.ext.get(SENT_KEY)
            self.tally.received(frame.id, int(sent) if sent else None)

    # --- the loop -------------------------------------------------------------

    def watch(self, index: int, client: mqtt.Client) -> None:
        """Keep the selector's interest in line with what the client wants."""
        sock = client.socket()
        if sock is None:
            if index in self.masks:
                del self.masks[index]
            return
        mask = READ | WRITE if client.want_write() else READ
        old = self.masks.get(index)
        if old == mask:
            return
        if old is None:
            self.selector.register(sock, mask, index)
        else:
            self.selector.modify(sock, mask, index)
        self.masks[index] = mask

    def forget(self, index: int, client: mqtt.Client) -> None:
        if self.masks.pop(index, None) is not None:
            sock = client.socket()
            if sock is not None:
                self.selector.unregister(sock)

    def poll(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            index = key.data
            if index is None:
                self.read_commands()
                continue
            client = self.clients[index]
            rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            if mask & READ:
                rc = client.loop_read()
            if mask & WRITE and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = client.loop_write()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.tally.error(f"{device_name(index)}: connection lost ({rc})")
                self.selector.unregister(key.fileobj)
                self.masks.pop(index, None)
                self.ready.discard(index)
                continue
            self.watch(index, client)
        # paho writes a PUBACK as soon as on_message returns: the ack is out.
        self.tally.acks_written()
        if not self.tally.reported and self.tally.done:
            self.tally.reported = True
            answer("done", **self.tally.report())

    def new_client(self, index: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device_name(index),
            clean_session=False,
            protocol=mqtt.MQTTv311,
            userdata=index,
        )
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_message = self.on_message
        return client

    def connect_all(self) -> dict[str, Any]:
        args = self.args
        started = time.monotonic()
        todo = [i for i in range(args.first, args.first + args.count) if i not in self.ready]
        failures: list[str] = []
        waiting: dict[int, float] = {}
        deadline = time.monotonic() + 300
        while (todo or waiting) and time.monotonic() < deadline:
            while todo and len(waiting) < args.concurrency:
                index = todo.pop()
                client = self.clients.get(index)
                try:
                    if client is None:
                        client = self.clients[index] = self.new_client(index)
                        client.connect(
                            args.host, args.port, keepalive=KEEPALIVE, bind_address=args.source
                        )
                    else:
                        client.reconnect()
                except OSError as exc:
                    failures.append(f"{device_name(index)}: {exc!r}")
                    continue
                self.watch(index, client)
                waiting[index] = time.monotonic()
            self.poll(0.05)
            for index in [i for i in waiting if i in self.ready]:
                del waiting[index]
            for index, since in list(waiting.items()):
                if time.monotonic() - since > 60:
                    failures.append(f"{device_name(index)}: no CONNACK/SUBACK in 60 s")
                    del waiting[index]
        return {
            "connected": len(self.ready),
            "failed": len(failures) + len(todo) + len(waiting),
            "failures": failures[:5],
            "seconds": time.monotonic() - started,
        }

    def disconnect_all(self) -> None:
        for index, client in self.clients.items():
            if index not in self.ready:
                continue
            self.forget(index, client)
            client.disconnect()  # writes DISCONNECT, then paho closes the socket
            for _ in range(100):
                if client.socket() is None or not client.want_write():
                    break
                client.loop_write()
                time.sleep(0.001)
        self.ready.clear()

    def read_commands(self) -> None:
        data = os.read(sys.stdin.fileno(), 65536)
        if not data:
            self.running = False
            return
        self.stdin_buffer += data
        while b"\n" in self.stdin_buffer:
            line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
            if line.strip():
                self.command(json.loads(line))

    def command(self, command: dict[str, Any]) -> None:
        cmd = command["cmd"]
        if cmd == "connect":
            answer("connected", **self.connect_all())
        elif cmd == "expect":
            self.tally.reset(command["count"], latency=command.get("latency", True))
            answer("armed")
        elif cmd == "report":
            answer("report", **self.tally.report())
        elif cmd == "disconnect":
            self.disconnect_all()
            answer("disconnected")
        elif cmd == "quit":
            self.running = False
        else:
            answer("error", message=f"unknown command {cmd!r}")

    def run(self) -> None:
        self.selector.register(sys.stdin.fileno(), READ, None)
        while self.running:
            self.poll(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", default="", help="source address, e.g. 127.0.0.11")
    parser.add_argument("--concurrency", type=int, default=100)
    Worker(parser.parse_args()).run()


if __name__ == "__main__":
    main()

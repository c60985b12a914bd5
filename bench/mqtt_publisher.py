"""Publisher, Mosquitto side: one MQTT connection publishing QoS 1, on uvloop.

    python -m bench.mqtt_publisher --port PORT --devices 5000

`publish {start, count, rate}`: message i goes to the topic of device
`i % devices`, its payload the same MessagePack `push` frame pushgate would
send (with the publish time in `ext`). At most `--window` messages are in
flight (published, not yet PUBACKed); the messages due at one moment leave in
one write. Answers `published` once the broker has PUBACKed every message,
i.e. taken responsibility for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import uvloop

from . import mqtt_codec as mq
from .common import mqtt_payload, mqtt_topic, now_ns
from .control import answer, asyncio_stdin_commands
from .mqtt_link import MqttLink, open_link

WRITE_BATCH = 64  # messages per write when publishing flat out
TICK = 0.001  # pacing granularity at a fixed rate
MAX_WINDOW = 60_000  # below the 65,535 packet ids, so a free one is always found


class Publisher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.heads = [mq.publish_head(mqtt_topic(i)) for i in range(args.devices)]
        self.in_flight: set[int] = set()
        self.acked = 0
        self.window_open = asyncio.Event()
        self.link: MqttLink | None = None
        self.next_mid = 0

    def on_puback(self, mid: int) -> None:
        if mid in self.in_flight:
            self.in_flight.discard(mid)
            self.acked += 1
            if len(self.in_flight) < self.args.window:
                self.window_open.set()

    def mid(self) -> int:
        while True:
            self.next_mid = self.next_mid % 65535 + 1
            if self.next_mid not in self.in_flight:
                return self.next_mid

    async def room(self, link: MqttLink) -> None:
        """Wait until the window and the transport's write buffer have room."""
        while len(self.in_flight) >= self.args.window:
            self.window_open.clear()
            await asyncio.wait_for(self.window_open.wait(), 120)
        await asyncio.wait_for(link.writable(), 120)

    def packets(self, start: int, count: int) -> bytes:
        devices, heads, in_flight = self.args.devices, self.heads, self.in_flight
        out = []
        for i in range(start, start + count):
            mid = self.mid()
            in_flight.add(mid)
            out.append(mq.publish(heads[i % devices], mid, mqtt_payload(i, now_ns())))
        return b"".join(out)

    async def publish(self, start: int, count: int, rate: float) -> dict[str, Any]:
        link = self.link
        assert link is not None
        self.acked = 0
        started_ns = now_ns()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        sent = 0
        while sent < count:
            await self.room(link)
            room = max(1, self.args.window - len(self.in_flight))
            if rate > 0:
                due = min(count, int((loop.time() - t0) * rate) + 1)
                if due <= sent:
                    await asyncio.sleep(TICK)
                    continue
                n = min(due - sent, room)
            else:
                n = min(WRITE_BATCH, count - sent, room)
            link.write(self.packets(start + sent, n))
            sent += n
            await asyncio.sleep(0)  # let PUBACKs in
        deadline = loop.time() + 600
        while self.in_flight and loop.time() < deadline:
            self.window_open.clear()
            try:
                await asyncio.wait_for(self.window_open.wait(), 1.0)
            except TimeoutError:
                pass
            if link.transport is None:
                break
        return {
            "count": count,
            "acked_by_broker": self.acked,
            "started_ns": started_ns,
            "seconds": loop.time() - t0,
            "errors": count - self.acked,
        }

    async def run(self) -> None:
        args = self.args
        self.link = link = await open_link(args.host, args.port, on_puback=self.on_puback)
        client_id = f"bench-publisher-{os.getpid()}"
        await link.handshake(client_id, clean_session=True, timeout=60)
        answer("ready")
        async for command in asyncio_stdin_commands():
            if command["cmd"] == "publish":
                started = time.monotonic()
                try:
                    result = await self.publish(command["start"], command["count"], command["rate"])
                except Exception as exc:
                    result = {"failed": repr(exc)[:500], "seconds": time.monotonic() - started}
                answer("published", **result)
            elif command["cmd"] == "quit":
                break
        try:
            await link.disconnect(10)
        except TimeoutError:
            link.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--window", type=int, default=10_000, help="messages in flight at most")
    args = parser.parse_args()
    if not 1 <= args.window <= MAX_WINDOW:
        parser.error(f"--window: 1 to {MAX_WINDOW} (MQTT packet ids are 16-bit)")
    uvloop.run(Publisher(args).run())


if __name__ == "__main__":
    main()

"""Device worker, Mosquitto side: many MQTT devices on one uvloop event loop.

    python -m bench.mqtt_devices --port PORT --first 0 --count 2500

Each device is an `MqttLink` (bench/mqtt_link.py: MQTT 3.1.1,
clean_session=false, client ID = device name) subscribed at QoS 1 to its own
topic. Every PUBLISH is PUBACKed (one PUBACK per message), and the PUBACKs of
one read leave in one write: the same discipline as the pushgate side's one
`ack` frame per read. Commands on stdin as in bench/pushgate_devices.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import uvloop

from protocol import ProtocolError, Push, decode

from .common import SENT_KEY, device_name, mqtt_topic
from .control import answer, asyncio_stdin_commands
from .mqtt_link import LinkClosed, MqttLink, open_link
from .tally import Tally

HANDSHAKE_TIMEOUT = 60.0


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.links: dict[int, MqttLink] = {}
        self.subscribed: set[int] = set()
        self.tally = Tally()
        self.new_in_read = 0

    # --- per read -------------------------------------------------------------

    def make_on_publish(self, index: int) -> Any:
        tally = self.tally

        def on_publish(payload: bytes) -> None:
            try:
                frame = decode(payload)
            except ProtocolError as exc:
                tally.error(f"{device_name(index)}: bad payload {exc}")
                return
            if isinstance(frame, Push):
                sent = frame.ext.get(SENT_KEY)
                self.new_in_read += tally.received(frame.id, int(sent) if sent else None)

        return on_publish

    def after_read(self) -> None:
        """The PUBACKs of one read are written: count them."""
        if self.new_in_read:
            self.tally.acks_written(self.new_in_read)
            self.new_in_read = 0
            if self.tally.take_done():
                answer("done", **self.tally.report())

    # --- devices ----------------------------------------------------------------

    async def connect_one(self, index: int) -> None:
        args = self.args
        name = device_name(index)
        link = await open_link(
            args.host,
            args.port,
            source=args.source,
            on_publish=self.make_on_publish(index),
            after_read=self.after_read,
            timeout=HANDSHAKE_TIMEOUT,
        )
        try:
            present = await link.handshake(name, clean_session=False, timeout=HANDSHAKE_TIMEOUT)
            if not (present and index in self.subscribed):
                await link.subscribe(mqtt_topic(index), HANDSHAKE_TIMEOUT)
                self.subscribed.add(index)
        except BaseException:
            link.abort()
            raise
        self.links[index] = link
        link.closed.add_done_callback(lambda _: self.lost(index, link))

    def lost(self, index: int, link: MqttLink) -> None:
        if self.links.get(index) is link:  # not a disconnect we asked for
            del self.links[index]
            self.tally.error(f"{device_name(index)}: {link.error}")

    async def connect_all(self) -> dict[str, Any]:
        args = self.args
        started = time.monotonic()
        limiter = asyncio.Semaphore(args.concurrency)
        failures: list[str] = []

        async def one(index: int) -> None:
            async with limiter:
                for attempt in range(3):
                    try:
                        await self.connect_one(index)
                        return
                    except (OSError, LinkClosed, TimeoutError) as exc:
                        if attempt == 2:
                            failures.append(f"{device_name(index)}: {exc!r}"[:200])
                        await asyncio.sleep(0.5)

        async with asyncio.TaskGroup() as group:
            for index in range(args.first, args.first + args.count):
                if index not in self.links:
                    group.create_task(one(index))
        return {
            "connected": len(self.links),
            "failed": len(failures),
            "failures": failures[:5],
            "seconds": time.monotonic() - started,
        }

    async def disconnect_all(self) -> None:
        limiter = asyncio.Semaphore(self.args.concurrency)
        links, self.links = list(self.links.values()), {}

        async def one(link: MqttLink) -> None:
            async with limiter:
                try:
                    await link.disconnect(10.0)
                except TimeoutError:
                    link.abort()

        async with asyncio.TaskGroup() as group:
            for link in links:
                group.create_task(one(link))

    # --- commands -----------------------------------------------------------------

    async def run(self) -> None:
        async for command in asyncio_stdin_commands():
            cmd = command["cmd"]
            if cmd == "connect":
                answer("connected", **await self.connect_all())
            elif cmd == "expect":
                self.tally.reset(command["count"], latency=command.get("latency", True))
                answer("armed")
                if self.tally.take_done():
                    answer("done", **self.tally.report())
            elif cmd == "report":
                answer("report", **self.tally.report())
            elif cmd == "disconnect":
                await self.disconnect_all()
                answer("disconnected")
            elif cmd == "quit":
                break
            else:
                answer("error", message=f"unknown command {cmd!r}")
        for link in self.links.values():
            link.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", default=None, help="source address, e.g. 127.0.0.11")
    parser.add_argument("--concurrency", type=int, default=100)
    uvloop.run(Worker(parser.parse_args()).run())
    sys.stdout.flush()


if __name__ == "__main__":
    main()

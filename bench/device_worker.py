"""What both sides' device workers share: many devices on one uvloop event loop.

A worker holds the devices [first, first + count), one link each
(`PushgateLink` or `MqttLink`, both `asyncio.Protocol`s that ack what each read
brought at once), counts what they receive in a `Tally`, and obeys the
orchestrator's commands on stdin (bench/control.py): connect, expect, report,
disconnect, quit. Answers `done` once every expected message is acked.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

from .common import SENT_KEY, device_name
from .control import answer, asyncio_stdin_commands
from .tally import Tally

HANDSHAKE_TIMEOUT = 60.0
CLOSE_TIMEOUT = 10.0


class Link(Protocol):
    closed: asyncio.Future[None]
    error: str | None

    def abort(self) -> None: ...

    async def disconnect(self, timeout: float) -> None: ...


class DeviceWorker(abc.ABC):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.links: dict[int, Link] = {}
        self.tally = Tally()
        self.new_in_read = 0

    @abc.abstractmethod
    async def open_device(self, index: int) -> Link:
        """A connection for device `index` (or raise)."""

    @abc.abstractmethod
    async def greet(self, index: int, link: Link) -> None:
        """Make device `index` ready to receive on `link` (or raise)."""

    # --- per message and per read -----------------------------------------------

    def received(self, message_id: str, ext: Mapping[str, str]) -> None:
        sent = ext.get(SENT_KEY)
        self.new_in_read += self.tally.received(message_id, int(sent) if sent else None)

    def after_read(self) -> None:
        """The acks of one read are written: count them."""
        if self.new_in_read:
            self.tally.acks_written(self.new_in_read)
            self.new_in_read = 0
            if self.tally.take_done():
                answer("done", **self.tally.report())

    # --- devices ----------------------------------------------------------------

    async def connect_one(self, index: int) -> None:
        link = await self.open_device(index)
        try:
            await self.greet(index, link)
        except BaseException:
            link.abort()
            raise
        self.links[index] = link
        link.closed.add_done_callback(lambda _: self.lost(index, link))

    def lost(self, index: int, link: Link) -> None:
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
                    except (OSError, TimeoutError) as exc:  # LinkClosed is a ConnectionError
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

        async def one(link: Link) -> None:
            async with limiter:
                try:
                    await link.disconnect(CLOSE_TIMEOUT)
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


def worker_arguments(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", default=None, help="source address, e.g. 127.0.0.11")
    parser.add_argument("--concurrency", type=int, default=100, help="connects in flight")
    return parser

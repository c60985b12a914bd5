"""Device worker, pushgate side: many devices (WebSocket or TCP) in one Trio run.

    python -m bench.pushgate_devices --url ws://127.0.0.1:PORT/v1/connect --first 0 --count 2500
    python -m bench.pushgate_devices --url tcp://127.0.0.1:PORT --first 0 --count 2500

Each device says hello, then one reader task per device reads the socket and
acks what each read brought in one `ack` frame, at once: no timer, the same
discipline as the MQTT side's PUBACK per message written after each read.
Commands on stdin (see bench/control.py): connect, expect, report,
disconnect, quit.
"""

from __future__ import annotations

import argparse
import time
from contextlib import aclosing
from typing import Any

import trio

from protocol import Ack, Bye, Hello, ProtocolError, Push, Welcome, device_token

from .common import APP_ID, SECRET, SENT_KEY, device_name
from .control import answer, stdin_commands
from .device_link import DeviceLink, LinkClosed, open_link
from .tally import Tally

HELLO_TIMEOUT = 60.0


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.links: dict[int, DeviceLink] = {}
        self.tally = Tally()
        self.nursery: trio.Nursery | None = None

    # --- devices ------------------------------------------------------------

    async def connect_one(self, index: int) -> None:
        name = device_name(index)
        link = await open_link(self.args.url, source=self.args.source, timeout=HELLO_TIMEOUT)
        try:
            token = device_token(SECRET, APP_ID, name)
            await link.send([Hello(v=1, app=APP_ID, device=name, platform="android", token=token)])
            with trio.fail_after(HELLO_TIMEOUT):
                frames: list[object] = []
                while not frames:
                    frames = list(await link.receive())
            if not isinstance(frames[0], Welcome):
                raise RuntimeError(f"{name}: expected welcome, got {frames[0]!r}")
        except BaseException:
            await link.aclose()
            raise
        self.links[index] = link
        assert self.nursery is not None
        # Pushes may come in the same read as the welcome: the reader acks them.
        self.nursery.start_soon(self.reader, index, link, frames[1:])

    async def deliver(self, index: int, link: DeviceLink, frames: list[object]) -> None:
        """Count what one read brought and ack all of it in one frame."""
        tally = self.tally
        ids: list[str] = []
        new = 0
        for frame in frames:
            if isinstance(frame, Push):
                sent = frame.ext.get(SENT_KEY)
                new += tally.received(frame.id, int(sent) if sent else None)
                ids.append(frame.id)
            else:
                tally.error(f"{device_name(index)}: unexpected {frame!r}"[:200])
        if ids:
            await link.send([Ack(ids=tuple(ids))])
            tally.acks_written(new)
            if tally.take_done():
                answer("done", **tally.report())

    async def reader(self, index: int, link: DeviceLink, frames: list[object]) -> None:
        try:
            while True:
                await self.deliver(index, link, frames)
                if any(isinstance(f, Bye) for f in frames):
                    return
                frames = list(await link.receive())
        except LinkClosed:
            return
        except ProtocolError as exc:
            self.tally.error(f"{device_name(index)}: {exc!r}"[:200])
        finally:
            if self.links.get(index) is link:
                del self.links[index]
                await link.aclose()

    # --- commands -----------------------------------------------------------

    async def connect_all(self) -> dict[str, Any]:
        args = self.args
        started = time.monotonic()
        limiter = trio.CapacityLimiter(args.concurrency)
        failures: list[str] = []

        async def one(index: int) -> None:
            async with limiter:
                for attempt in range(3):
                    try:
                        await self.connect_one(index)
                        return
                    except (OSError, LinkClosed, trio.TooSlowError, RuntimeError) as exc:
                        if attempt == 2:
                            failures.append(f"{device_name(index)}: {exc!r}"[:200])
                        await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            for index in range(args.first, args.first + args.count):
                if index not in self.links:
                    nursery.start_soon(one, index)
        return {
            "connected": len(self.links),
            "failed": len(failures),
            "failures": failures[:5],
            "seconds": time.monotonic() - started,
        }

    async def disconnect_all(self) -> None:
        limiter = trio.CapacityLimiter(self.args.concurrency)
        links, self.links = list(self.links.values()), {}

        async def one(link: DeviceLink) -> None:
            async with limiter:
                await link.aclose()

        async with trio.open_nursery() as nursery:
            for link in links:
                nursery.start_soon(one, link)

    async def commands(self, cancel: trio.CancelScope) -> None:
        async with aclosing(stdin_commands()) as commands:
            async for command in commands:
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
        cancel.cancel()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            await self.commands(nursery.cancel_scope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/v1/connect or tcp://HOST:PORT")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", default=None, help="source address, e.g. 127.0.0.11")
    parser.add_argument("--concurrency", type=int, default=100)
    trio.run(Worker(parser.parse_args()).run)


if __name__ == "__main__":
    main()

"""Device worker, pushgate side: many WebSocket devices in one Trio run.

    python -m bench.ws_devices --url ws://127.0.0.1:PORT/v1/connect --first 0 --count 2500

Each device is a `client_sim` connection (raw frames, no behaviours): hello,
then one reader task that records every `push`. Acks go out in batches: every
`--ack-interval` seconds one task writes one `ack` frame per device with
everything that device received since the last one. Commands on stdin (see
bench/control.py): connect, expect, disconnect, quit.
"""

from __future__ import annotations

import argparse
import time
from contextlib import aclosing
from typing import Any

import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from client_sim.transport import DeviceConnection
from protocol import Ack, Hello, Push, Welcome, device_token

from .common import APP_ID, SECRET, SENT_KEY, device_name
from .control import answer, stdin_commands
from .tally import Tally


class Worker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.conns: dict[int, DeviceConnection] = {}
        self.pending: dict[int, list[str]] = {}
        self.tally = Tally()
        self.nursery: trio.Nursery | None = None

    # --- devices ------------------------------------------------------------

    async def connect_one(self, index: int) -> None:
        name = device_name(index)
        conn = await open_device_connection(
            self.args.url, local_address=self.args.source, connect_timeout=60.0
        )
        try:
            await conn.send_frame(
                Hello(
                    v=1,
                    app=APP_ID,
                    device=name,
                    platform="android",
                    token=device_token(SECRET, APP_ID, name),
                )
            )
            with trio.fail_after(60):
                frame = await conn.receive_frame()
            if not isinstance(frame, Welcome):
                raise RuntimeError(f"{name}: expected welcome, got {frame!r}")
        except BaseException:
            await conn.aclose()
            raise
        self.conns[index] = conn
        assert self.nursery is not None
        self.nursery.start_soon(self.reader, index, conn)

    async def reader(self, index: int, conn: DeviceConnection) -> None:
        tally = self.tally
        try:
            while True:
                frame = await conn.receive_frame()
                if isinstance(frame, Push):
                    sent = frame.ext.get(SENT_KEY)
                    tally.received(frame.id, int(sent) if sent else None)
                    ids = self.pending.get(index)
                    if ids is None:
                        self.pending[index] = [frame.id]
                    else:
                        ids.append(frame.id)
                else:
                    tally.error(f"{device_name(index)}: unexpected {frame!r}"[:200])
                    if type(frame).__name__ == "Bye":
                        return
        except ConnectionClosed:
            return
        except Exception as exc:
            tally.error(f"{device_name(index)}: reader failed: {exc!r}"[:200])
        finally:
            if self.conns.get(index) is conn:
                del self.conns[index]

    async def acker(self) -> None:
        interval = self.args.ack_interval
        while True:
            await trio.sleep(interval)
            if self.pending:
                batch, self.pending = self.pending, {}
                for index, ids in batch.items():
                    conn = self.conns.get(index)
                    if conn is None:
                        continue
                    try:
                        await conn.send_frame(Ack(ids=tuple(ids)))
                    except ConnectionClosed:
                        self.tally.error(f"{device_name(index)}: closed before its ack")
                self.tally.acks_written()
            self.check_done()

    def check_done(self) -> None:
        tally = self.tally
        if not tally.reported and tally.done:
            tally.reported = True
            answer("done", **tally.report())

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
                    except (OSError, ConnectionClosed, trio.TooSlowError, RuntimeError) as exc:
                        if attempt == 2:
                            failures.append(f"{device_name(index)}: {exc!r}"[:200])
                        await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            for index in range(args.first, args.first + args.count):
                if index not in self.conns:
                    nursery.start_soon(one, index)
        return {
            "connected": len(self.conns),
            "failed": len(failures),
            "failures": failures[:5],
            "seconds": time.monotonic() - started,
        }

    async def disconnect_all(self) -> None:
        limiter = trio.CapacityLimiter(self.args.concurrency)

        async def one(conn: DeviceConnection) -> None:
            async with limiter:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            for conn in list(self.conns.values()):
                nursery.start_soon(one, conn)
        self.conns.clear()
        self.pending.clear()

    async def commands(self, cancel: trio.CancelScope) -> None:
        async with aclosing(stdin_commands()) as commands:
            async for command in commands:
                cmd = command["cmd"]
                if cmd == "connect":
                    answer("connected", **await self.connect_all())
                elif cmd == "expect":
                    self.tally.reset(command["count"], latency=command.get("latency", True))
                    answer("armed")
                    self.check_done()
                elif cmd == "report":
                    answer("report", **self.tally.report())
                elif cmd == "disconnect":
                    await self.disconnect_all()
                    answer("disconnected")
                elif cmd == "quit":
                    cancel.cancel()
                    return
                else:
                    answer("error", message=f"unknown command {cmd!r}")
        cancel.cancel()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            nursery.start_soon(self.acker)
            await self.commands(nursery.cancel_scope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", default=None, help="source address, e.g. 127.0.0.11")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--ack-interval", type=float, default=0.005)
    trio.run(Worker(parser.parse_args()).run)


if __name__ == "__main__":
    main()

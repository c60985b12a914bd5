"""Devices in several processes: `WorkerPool` (the parent side) and the worker itself.

One process holds at most ~20,000 sockets (`ulimit -n`), and one Python
process uses one core: past a few thousand busy devices, the simulator spreads
its fleet over worker processes. Each worker runs a `Fleet` of its share of
the devices and streams what they see to the parent as JSON lines on its
stdout; the parent runs the push driver and the oracle.

    parent -> worker (stdin)    {"url": ..., "devices": [[id, behaviour, platform,
                                 user, source_address], ...], ...}   first line
                                {"cmd": "storm"} | {"cmd": "close"}
    worker -> parent (stdout)   {"t": "a", "r": [[device, message_id, received_ms,
                                 session, expires_ms, clock_offset_ms], ...]}
                                {"t": "k", "r": [[device, acked_ms, [ids]], ...]}
                                {"t": "p", "r": [[device, 1 | 0, at_ms], ...]}
                                {"t": "c", "counts": {...}}   every 0.2 s
                                {"t": "end"}                  after "close"

A worker closes its fleet when told to, or when its stdin ends (the parent
is gone). Run one by hand with `python -m client_sim.worker`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import Any

import trio

from .behaviours import BehaviourParams, make_behaviour
from .fleet import DevicePlan, Fleet, FleetCounts, FleetObserver
from .oracle import Arrival

FLUSH_INTERVAL = 0.05
COUNTS_INTERVAL = 0.2


class WorkerFailed(Exception):
    """A worker process ended without being asked to, or reported an error."""


def raise_open_files_limit() -> int:
    """Raise the soft limit of open files to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class LineReader:
    """Lines (without the newline) from a byte stream."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_line: int = 64 * 1024 * 1024) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._eof = False
        self._max_line = max_line

    async def next_line(self) -> bytes | None:
        """The next line; None at the end of the stream."""
        while not self._lines:
            if self._eof:
                return None
            data = await self._stream.receive_some(1024 * 1024)
            if not data:
                self._eof = True
                if self._buffer:
                    self._lines.append(bytes(self._buffer))
                    self._buffer.clear()
                continue
            self._buffer += data
            *complete, rest = self._buffer.split(b"\n")
            self._lines.extend(bytes(line) for line in complete)
            self._buffer = bytearray(rest)
            if len(self._buffer) > self._max_line:
                raise ValueError("line too long")
        return self._lines.pop(0)


# --- parent side -----------------------------------------------------------------


def plan_to_json(plan: DevicePlan) -> list[Any]:
    return [plan.device_id, plan.behaviour.name, plan.platform, plan.user, plan.local_address]


class WorkerPool:
    """The device side of a run in `processes` worker processes.

    Same interface as `Fleet` for the runner: `run`, `counts`, `wait_until`,
    `storm`, `close`. Records go to `observer` as they stream in.
    """

    def __init__(
        self,
        plans: Sequence[DevicePlan],
        *,
        processes: int,
        url: str,
        app: str,
        secret: str,
        observer: FleetObserver,
        params: BehaviourParams,
        connect_concurrency: int = 100,
        first_connect_timeout: float = 30.0,
        close_timeout: float = 5.0,
        seed: int | str = 0,
        device_options: dict[str, Any] | None = None,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.observer = observer
        self.close_timeout = close_timeout
        self.counts = FleetCounts(devices=len(plans))
        shares = [list(plans[k::processes]) for k in range(processes)]
        self._specs = [
            {
                "url": url,
                "app": app,
                "secret": secret,
                "seed": seed,
                "connect_concurrency": connect_concurrency,
                "first_connect_timeout": first_connect_timeout,
                "close_timeout": close_timeout,
                "params": asdict(params),
                "device_options": device_options or {},
                "devices": [plan_to_json(p) for p in share],
            }
            for share in shares
            if share
        ]
        self._worker_counts: list[dict[str, int]] = [{} for _ in self._specs]
        self._processes: list[trio.Process] = []
        self._ended = [False] * len(self._specs)
        self._changed = trio.Event()
        self._closing = trio.Event()
        self._done = trio.Event()

    @property
    def processes(self) -> int:
        return len(self._specs)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                for k, spec in enumerate(self._specs):
                    process = await trio.lowlevel.open_process(
                        [sys.executable, "-m", "client_sim.worker"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                    )
                    self._processes.append(process)
                    nursery.start_soon(self._read, k, process)
                    await self._send(process, spec)
                task_status.started()
                await self._closing.wait()
                for process in self._processes:
                    await self._send(process, {"cmd": "close"})
                with trio.move_on_after(self.close_timeout + 5.0):
                    await self.wait_until(lambda: all(self._ended), timeout=float("inf"))
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                for process in self._processes:
                    if process.returncode is None:
                        process.kill()
                    with trio.move_on_after(5):
                        await process.wait()
            self._done.set()
            self._notify()

    async def close(self) -> None:
        self._closing.set()
        with trio.move_on_after(self.close_timeout + 10.0):
            await self._done.wait()

    async def storm(self) -> int:
        """Every worker drops all its devices at once. Returns the devices
        connected just before (from the last counts the workers sent)."""
        victims = self.counts.connected
        for process in self._processes:
            await self._send(process, {"cmd": "storm"})
        return victims

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        await trio.lowlevel.checkpoint()
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def _send(self, process: trio.Process, message: dict[str, Any]) -> None:
        assert process.stdin is not None
        try:
            await process.stdin.send_all(json.dumps(message).encode() + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the worker is gone; its reader reports it

    async def _read(self, k: int, process: trio.Process) -> None:
        assert process.stdout is not None
        lines = LineReader(process.stdout)
        while (line := await lines.next_line()) is not None:
            self._dispatch(k, json.loads(line))
        if not self._ended[k]:
            code = await process.wait()
            raise WorkerFailed(f"worker {k} ended unexpectedly (exit code {code})")

    def _dispatch(self, k: int, message: dict[str, Any]) -> None:
        kind = message.get("t")
        observer = self.observer
        if kind == "a":
            for device, message_id, received_ms, session, expires_ms, offset in message["r"]:
                observer.arrive(
                    Arrival(
                        device=device,
                        message_id=message_id,
                        received_ms=received_ms,
                        session=session,
                        expires_ms=expires_ms,
                        clock_offset_ms=offset,
                    )
                )
        elif kind == "k":
            for device, acked_ms, ids in message["r"]:
                observer.ack(device, ids, acked_ms)
        elif kind == "p":
            for device, online, at_ms in message["r"]:
                observer.presence(device, online=bool(online), at_ms=at_ms)
        elif kind == "c":
            self._worker_counts[k] = message["counts"]
            for name in FleetCounts.__slots__:
                if name != "devices":
                    total = sum(c.get(name, 0) for c in self._worker_counts)
                    setattr(self.counts, name, total)
        elif kind == "end":
            self._ended[k] = True
        elif kind == "error":
            raise WorkerFailed(f"worker {k}: {message.get('message')}")
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


# --- worker side -----------------------------------------------------------------


class _Emitter:
    """A fleet observer that batches records into JSON lines."""

    def __init__(self) -> None:
        self.arrivals: list[list[Any]] = []
        self.acks: list[list[Any]] = []
        self.presences: list[list[Any]] = []

    def arrive(self, arrival: Arrival) -> None:
        self.arrivals.append(
            [
                arrival.device,
                arrival.message_id,
                arrival.received_ms,
                arrival.session,
                arrival.expires_ms,
                arrival.clock_offset_ms,
            ]
        )

    def ack(self, device: str, message_ids: Iterable[str], acked_ms: int) -> None:
        self.acks.append([device, acked_ms, list(message_ids)])

    def presence(self, device: str, *, online: bool, at_ms: int) -> None:
        self.presences.append([device, int(online), at_ms])

    def take(self) -> bytes:
        lines = []
        # Presence first: a device's connection is known before what came on it.
        for kind, records in (("p", self.presences), ("a", self.arrivals), ("k", self.acks)):
            if records:
                lines.append(json.dumps({"t": kind, "r": records}, separators=(",", ":")))
        self.presences, self.arrivals, self.acks = [], [], []
        return "".join(line + "\n" for line in lines).encode()


async def worker_main(stdin: trio.abc.ReceiveStream, stdout: trio.abc.SendStream) -> None:
    """Run one worker: read its spec, run the fleet, stream records, obey commands."""
    lines = LineReader(stdin)
    first = await lines.next_line()
    if first is None:
        return
    spec = json.loads(first)
    params = BehaviourParams(**spec["params"])
    plans = [
        DevicePlan(
            device_id=device_id,
            behaviour=make_behaviour(behaviour, params),
            platform=platform,
            user=user,
            local_address=address,
        )
        for device_id, behaviour, platform, user, address in spec["devices"]
    ]
    emitter = _Emitter()
    fleet = Fleet(
        plans,
        url=spec["url"],
        app=spec["app"],
        secret=spec["secret"],
        observer=emitter,
        connect_concurrency=spec["connect_concurrency"],
        first_connect_timeout=spec["first_connect_timeout"],
        close_timeout=spec["close_timeout"],
        seed=spec["seed"],
        device_options=spec["device_options"],
    )
    write_lock = trio.Lock()

    async def flush(final: bool = False) -> None:
        data = emitter.take()
        counts = json.dumps({"t": "c", "counts": fleet.counts.as_dict()}) + "\n"
        data += counts.encode()
        if final:
            data += b'{"t":"end"}\n'
        async with write_lock:
            await stdout.send_all(data)

    async def flusher() -> None:
        while True:
            await trio.sleep(FLUSH_INTERVAL)
            if emitter.arrivals or emitter.acks or emitter.presences:
                await flush()

    async def counter() -> None:
        while True:
            await trio.sleep(COUNTS_INTERVAL)
            await flush()

    async with trio.open_nursery() as nursery:
        await nursery.start(fleet.run)
        nursery.start_soon(flusher)
        nursery.start_soon(counter)
        while (line := await lines.next_line()) is not None:
            command = json.loads(line).get("cmd")
            if command == "storm":
                nursery.start_soon(fleet.storm)
            elif command == "close":
                break
        await fleet.close()
        await flush(final=True)
        nursery.cancel_scope.cancel()


async def _main() -> None:
    stdin = trio.lowlevel.FdStream(os.dup(0))
    stdout = trio.lowlevel.FdStream(os.dup(1))
    try:
        await worker_main(stdin, stdout)
    except Exception as exc:
        message = json.dumps({"t": "error", "message": f"{type(exc).__name__}: {exc}"})
        with trio.move_on_after(1):
            await stdout.send_all(message.encode() + b"\n")
        raise
    finally:
        await stdout.aclose()
        await stdin.aclose()


def main() -> None:
    raise_open_files_limit()
    trio.run(_main)


if __name__ == "__main__":
    main()

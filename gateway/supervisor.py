"""`pushgate serve --workers N`: N node processes on the same ports, one command.

Each worker is `pushgate serve` itself with the same arguments, listening with
SO_REUSEPORT (the kernel spreads connections over them) and sharing the store
and broker like any other node. Worker 1 starts alone: it migrates the store,
makes the first-run app, and picks the ports if 0 was asked; its lines
(`api=…`, `ws=…`, `tcp=…`, the demo app) are this command's. The others then
start on its ports. A worker that dies is logged and started again (with
backoff if it keeps dying); SIGINT/SIGTERM is passed to every worker, each
drains its devices, and the command exits 0 if they all did.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trio

from gateway.logs import setup_logging

log = logging.getLogger("pushgate.supervisor")

READY_TIMEOUT = 60.0  # worker 1's address lines must come within this
STOP_TIMEOUT = 30.0  # after SIGTERM, a worker that has not exited is killed
MAX_LINE = 4096
BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0
STABLE_AFTER = 30.0  # a worker up this long resets its backoff
PARENT_POLL_INTERVAL = 0.5
SUPERVISOR_PID_ENV = "PUSHGATE_SUPERVISOR_PID"


@dataclass
class _Worker:
    index: int
    process: trio.Process | None = None
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(self, workers: int, argv: list[str], announce: Callable[[str], None]) -> None:
        self.count = workers
        self.argv = argv  # `serve …` as given, --workers included (overridden below)
        self.announce = announce
        self.workers = [_Worker(i + 1) for i in range(workers)]
        self.ports: dict[str, int] = {}
        self.stopping = False

    def _command(self, worker: _Worker) -> list[str]:
        command = [sys.executable, "-m", "gateway.cli", *self.argv, "--workers", "1"]
        command.append("--reuse-port")  # the last of a repeated option wins (click)
        for name, port in self.ports.items():
            command += [f"--{name}-port", str(port)]
        return command

    def _env(self, worker: _Worker) -> dict[str, str]:
        env = dict(os.environ, PUSHGATE_WORKERS="1")
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        node = env.get("PUSHGATE_NODE_ID")
        if node is not None:
            env["PUSHGATE_NODE_ID"] = f"{node}-{worker.index}"
        return env

    async def run(self) -> int:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_signals, signals)
                start_failed: int | None = None
                try:
                    async with trio.open_nursery() as keepers:
                        await keepers.start(self._keep, self.workers[0])
                        for worker in self.workers[1:]:
                            keepers.start_soon(self._keep, worker)
                except* _StartFailed as group:
                    first = group.exceptions[0]
                    start_failed = first.code if isinstance(first, _StartFailed) else 1
                finally:
                    nursery.cancel_scope.cancel()  # every worker is gone: stop watching
        if start_failed is not None:
            return start_failed  # worker 1 said why on stderr (one line)
        codes = [w.exit_codes[-1] if w.exit_codes else 0 for w in self.workers]
        log.info("event=workers_stopped exit_codes=%s", codes)
        return 0 if all(c == 0 for c in codes) else 1

    async def _watch_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            log.info("event=signal signal=%s workers=%d", signal.Signals(signum).name, self.count)
            self.stopping = True
            for worker in self.workers:
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.send_signal(signal.SIGTERM)

    async def _keep(
        self, worker: _Worker, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the worker, and again whenever it dies, until the supervisor stops."""
        backoff = BACKOFF_MIN
        started = False
        while not self.stopping:
            began = trio.current_time()
            first = not started and worker.index == 1
            code = await self._run_once(worker, task_status if first else None)
            started = True
            worker.exit_codes.append(code)
            if self.stopping:
                return
            worker.restarts += 1
            log.warning(
                "event=worker_died worker=%d exit_code=%d restarts=%d",
                worker.index,
                code,
                worker.restarts,
            )
            if trio.current_time() - began > STABLE_AFTER:
                backoff = BACKOFF_MIN
            await trio.sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)

    async def _run_once(self, worker: _Worker, ready: trio.TaskStatus[None] | None) -> int:
        process = await trio.lowlevel.open_process(
            self._command(worker),
            stdout=subprocess.PIPE,
            env=self._env(worker),
        )
        worker.process = process
        log.info("event=worker_started worker=%d pid=%d", worker.index, process.pid)
        try:
            assert process.stdout is not None
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._relay, worker, process.stdout, ready)
                with trio.CancelScope(shield=True):
                    code = await process.wait()
                nursery.cancel_scope.cancel()
            if ready is not None and not self.ports:
                raise _StartFailed(code)
            return code
        finally:
            if process.returncode is None:
                with trio.CancelScope(shield=True):
                    process.send_signal(signal.SIGTERM)
                    with trio.move_on_after(STOP_TIMEOUT):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()

    async def _relay(
        self,
        worker: _Worker,
        stdout: trio.abc.ReceiveStream,
        ready: trio.TaskStatus[None] | None,
    ) -> None:
        """Worker 1's first lines are ours (and name the ports); the rest is drained."""
        buffer = b""
        with trio.move_on_after(READY_TIMEOUT if ready is not None else math.inf):
            async for chunk in stdout:
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode(errors="replace")
                    if ready is not None:
                        self.announce(line)
                        self._note_port(line)
                        if "tcp" in self.ports:
                            ready.started()
                            ready = None
                if len(buffer) > MAX_LINE:
                    buffer = b""
        async for _ in stdout:  # keep the pipe flowing; nothing else is printed
            pass

    def _note_port(self, line: str) -> None:
        name, sep, url = line.partition("=")
        if sep and name in ("api", "ws", "tcp"):
            self.ports[name] = int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def watch_supervisor(supervisor_pid: int, stop: Callable[[], None]) -> None:
    """In a worker: stop (draining, as on SIGTERM) once the supervisor is gone, kill -9
    included, so no worker outlives the command that owns it.

    Not prctl(PR_SET_PDEATHSIG): that signal follows the *thread* that forked the
    worker, and trio forks from a worker thread that exits after 10 s idle: every
    worker got SIGTERM then, under load, while its supervisor lived."""
    while True:
        if os.getppid() != supervisor_pid:  # reparented: the supervisor has exited
            break
        await trio.sleep(PARENT_POLL_INTERVAL)
    log.warning("event=supervisor_gone supervisor_pid=%d", supervisor_pid)
    stop()


class _StartFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"worker 1 exited with {code} before it was ready")
        self.code = code


def supervise(workers: int, argv: list[str], *, log_level: str = "info") -> int:
    """Run `workers` node processes of `serve` with `argv`; the exit code."""
    setup_logging(log_level)
    supervisor = Supervisor(workers, argv, lambda line: print(line, flush=True))
    return trio.run(supervisor.run)

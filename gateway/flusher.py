"""One task that writes the queued frames of every connection that has some.

Connections ask for a turn (`schedule`); the flusher runs once the other
tasks have queued what they will this scheduling round, and each connection
writes everything it has in one non-blocking write. A task per connection
woken per message would cost a task switch per message instead.

Its nursery also runs the short-lived helper tasks of connections (a drain
task awaiting a full socket, a backlog page being read), so no connection
needs a nursery of its own while idle. A helper must not raise: each catches
its own errors (a bug in one must not end the others).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn, Protocol

import trio

log = logging.getLogger("pushgate.flusher")


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what is queued without waiting; never raises."""


class Flusher:
    __slots__ = ("_nursery", "_parked", "_ready", "_task")

    def __init__(self) -> None:
        self._ready: list[Flushable] = []
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._nursery: trio.Nursery | None = None

    def schedule(self, target: Flushable) -> None:
        """Give `target` a turn in the next round (the caller asks once per round)."""
        self._ready.append(target)
        if self._parked:
            self._parked = False
            assert self._task is not None
            trio.lowlevel.reschedule(self._task)

    def start_soon(self, helper: Callable[[], Awaitable[None]]) -> None:
        """Run a connection's helper task (it never raises; it owns its cancel scope)."""
        if self._nursery is None:
            raise RuntimeError("the flusher is not running")
        self._nursery.start_soon(helper)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._task = trio.lowlevel.current_task()
            task_status.started()
            try:
                await self._loop()
            finally:
                self._nursery = None

    async def _loop(self) -> NoReturn:
        while True:
            if self._ready:
                await trio.lowlevel.checkpoint()
            else:
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._unpark)
            ready, self._ready = self._ready, []
            for target in ready:
                try:
                    target.flush()
                except Exception:  # flush() never raises; if it does, the others still run
                    log.exception("event=flush_failed")

    def _unpark(self, raise_cancel: Callable[[], NoReturn]) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED

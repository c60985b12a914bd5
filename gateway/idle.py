"""The idle check: one task closes every connection that received nothing for too long.

A cancel scope per connection (or per frame read) would cost more than the
frame; instead one pass every eighth of the idle timeout (at most 5 s) looks
at when each open connection last heard from its device, so a silent device
gets `bye idle_timeout` between 1 and 1.125 idle timeouts after its last
frame. A half-open connection (the peer vanished without a FIN) is found
the same way.
"""

from __future__ import annotations

from typing import NoReturn, Protocol

import trio

MAX_PERIOD = 5.0


class Watched(Protocol):
    def idle(self, now: float) -> bool:
        """Nothing received for the idle timeout by `now` (Trio time)."""

    def close_idle(self) -> None:
        """Say `bye idle_timeout` and close."""


class IdleWatch:
    __slots__ = ("_idle_timeout", "_watched", "_woken")

    def __init__(self, idle_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._watched: set[Watched] = set()
        self._woken: trio.Event | None = None  # set when the first connection comes

    def watch(self, connection: Watched) -> None:
        self._watched.add(connection)
        if self._woken is not None:
            self._woken.set()

    def unwatch(self, connection: Watched) -> None:
        self._watched.discard(connection)

    async def run(self) -> NoReturn:
        period = min(MAX_PERIOD, self._idle_timeout / 8)
        while True:
            if not self._watched:
                self._woken = trio.Event()
                await self._woken.wait()
                self._woken = None
            await trio.sleep(period)
            now = trio.current_time()
            for connection in [c for c in self._watched if c.idle(now)]:
                connection.close_idle()

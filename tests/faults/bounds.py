"""Measuring what one client's load costs everyone else, against a real `pushgate serve`.

While a test loads the gateway, `watch()` keeps a bystander busy on another
app (a device pinging, a backend pushing) and samples the server's RSS; the
test then asserts on what it measured: the memory the server grew by, and
the bystander's latencies against those of a quiet phase measured just
before (`quiet()`), so that the bounds hold on a busy machine too.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import trio

from protocol import Ping, Pong
from tests.harness import OTHER_APP, ServerProcess, api_client, connect_device

from .common import rss_kib

PACE = 0.05  # seconds between a bystander's requests
QUIET_SECONDS = 2.0
STALL = 2.0  # no bystander request may wait longer (before the bounds: 3-8 s, or forever)


@dataclass
class Watch:
    rss_start_kib: int
    rss_max_kib: int = 0
    pings: list[float] = field(default_factory=list)  # seconds, ping -> pong
    pushes: list[float] = field(default_factory=list)  # seconds, request -> 200

    @property
    def grown_mib(self) -> float:
        return (self.rss_max_kib - self.rss_start_kib) / 1024

    def summary(self) -> str:
        def ms(values: list[float], f: str) -> str:
            if not values:
                return "-"
            value = max(values) if f == "max" else statistics.median(values)
            return f"{value * 1000:.0f}ms"

        return (
            f"rss_grown={self.grown_mib:.1f}MiB ping_max={ms(self.pings, 'max')}"
            f" ping_p50={ms(self.pings, 'p50')} push_max={ms(self.pushes, 'max')}"
            f" push_p50={ms(self.pushes, 'p50')} pings={len(self.pings)} pushes={len(self.pushes)}"
        )


@asynccontextmanager
async def watch(server: ServerProcess) -> AsyncIterator[Watch]:
    """A bystander app's device and backend, timed, and the server's RSS, sampled."""
    pid = server.process.pid
    watched = Watch(rss_start_kib=rss_kib(pid))
    conn, _ = await connect_device(server.ws_url, "bystander-device", app=OTHER_APP)

    # A request still unanswered when the watch ends counts with the time it has waited.
    pending: dict[str, float] = {}

    async def pinger() -> None:
        while True:
            pending["ping"] = trio.current_time()
            await conn.send_frame(Ping())
            while not isinstance(await conn.receive_frame(), Pong):
                pass
            watched.pings.append(trio.current_time() - pending.pop("ping"))
            await trio.sleep(PACE)

    async def pusher(client: httpx.AsyncClient) -> None:
        body = {"delivery_type": "android", "target_id": "bystander-offline", "title": "t"}
        while True:
            pending["push"] = trio.current_time()
            response = await client.post("/v1/push/simple", json={**body, "content": "c"})
            assert response.status_code == 200, response.text
            watched.pushes.append(trio.current_time() - pending.pop("push"))
            await trio.sleep(PACE)

    async def sampler() -> None:
        while True:
            watched.rss_max_kib = max(watched.rss_max_kib, rss_kib(pid))
            await trio.sleep(0.1)

    async with api_client(server.api, OTHER_APP) as client, trio.open_nursery() as nursery:
        nursery.start_soon(pinger)
        nursery.start_soon(pusher, client)
        nursery.start_soon(sampler)
        try:
            yield watched
        finally:
            nursery.cancel_scope.cancel()
            now = trio.current_time()
            if "ping" in pending:
                watched.pings.append(now - pending["ping"])
            if "push" in pending:
                watched.pushes.append(now - pending["push"])
    watched.rss_max_kib = max(watched.rss_max_kib, rss_kib(pid))
    await conn.aclose()


async def quiet(server: ServerProcess) -> Watch:
    """The bystander's figures while nothing else goes on."""
    async with watch(server) as watched:
        await trio.sleep(QUIET_SECONDS)
    return watched


def assert_unharmed(loaded: Watch, calm: Watch) -> None:
    """The bystander did not notice: its medians within 3x the quiet ones (+20 ms), and
    none of its requests waited as long as a stall."""
    for name in ("pings", "pushes"):
        during, before = getattr(loaded, name), getattr(calm, name)
        assert during, f"no {name} answered: {loaded.summary()}"
        bound = 3 * statistics.median(before) + 0.02
        assert statistics.median(during) <= bound, f"{name}: {loaded.summary()} vs {calm.summary()}"
        assert max(during) < STALL, f"{name}: {loaded.summary()}"

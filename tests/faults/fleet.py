"""A fleet of devices and pushers for fault tests: every reception and every 2xx recorded.

Devices connect through fault proxies (so the gateway behind them can be
killed and restarted on new ports), ack every push at once, and reconnect
with a short backoff forever. Each reception is labelled with the fleet's
`generation` as read *after* the connection's `welcome`: the test bumps it
only once the previous gateway process is dead and the proxies point at the
next one, so the label names exactly the process that sent the push.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from client_sim.transport import DeviceConnection
from protocol import Ack, Bye, ProtocolError, Push, Welcome
from tests.harness import APP, hello_for

from .proxy import FaultProxy

TRANSPORTS = ("ws", "tcp")


@dataclass
class Fleet:
    proxies: dict[str, FaultProxy]  # "ws" / "tcp" -> the proxy in front of that listener
    size: int
    generation: int = 0
    api: str = ""  # the current gateway's API base URL
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    # device -> [(message_id, generation)], every push frame, duplicates included
    received: dict[str, list[tuple[str, int]]] = field(default_factory=lambda: defaultdict(list))
    accepted: dict[str, str] = field(default_factory=dict)  # message_id -> device (2xx)
    byes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    welcomes: int = 0
    push_failures: int = 0
    pushing: bool = False

    @property
    def devices(self) -> list[str]:
        return [f"fleet-{i:03d}" for i in range(self.size)]

    def transport_of(self, device: str) -> str:
        return TRANSPORTS[int(device.rsplit("-", 1)[1]) % 2]

    def received_ids(self, device: str) -> set[str]:
        return {mid for mid, _ in self.received[device]}

    def missing(self) -> dict[str, str]:
        """Accepted messages their device has not received yet."""
        got = {d: self.received_ids(d) for d in self.devices}
        return {mid: dev for mid, dev in self.accepted.items() if mid not in got[dev]}

    # --- devices ----------------------------------------------------------------

    async def run_devices(self, nursery: trio.Nursery) -> None:
        for device in self.devices:
            nursery.start_soon(self._device_loop, device)

    async def _device_loop(self, device: str) -> None:
        proxy = self.proxies[self.transport_of(device)]
        url = proxy.url(self.transport_of(device))
        while True:
            try:
                conn = await open_device_connection(url, connect_timeout=5.0, write_timeout=5.0)
            except (OSError, ConnectionClosed, trio.TooSlowError):
                await trio.sleep(self.rng.uniform(0.05, 0.2))
                continue
            try:
                await self._serve(device, conn)
            except (ConnectionClosed, ProtocolError, trio.TooSlowError):
                pass
            finally:
                await conn.aclose()
            await trio.sleep(self.rng.uniform(0.05, 0.2))

    async def _serve(self, device: str, conn: DeviceConnection) -> None:
        await conn.send_frame(hello_for(device))
        with trio.fail_after(10):
            welcome = await conn.receive_frame()
        if not isinstance(welcome, Welcome):
            return
        generation = self.generation
        self.welcomes += 1
        log = self.received[device]
        while True:
            frame = await conn.receive_frame()
            if isinstance(frame, Push):
                log.append((frame.id, generation))
                await conn.send_frame(Ack(ids=(frame.id,)))
            elif isinstance(frame, Bye):
                self.byes[device].append(frame.reason)
                return

    # --- pushers ------------------------------------------------------------------

    async def push_until_stopped(self, workers: int) -> None:
        """Push from `workers` tasks until `pushing` is cleared or the gateway is gone."""
        self.pushing = True
        async with (
            httpx.AsyncClient(
                base_url=self.api, headers={"authorization": f"Bearer {APP.api_key}"}, timeout=10.0
            ) as client,
            trio.open_nursery() as nursery,
        ):
            for worker in range(workers):
                nursery.start_soon(self._pusher, client, worker)

    async def _pusher(self, client: httpx.AsyncClient, worker: int) -> None:
        n = 0
        devices = self.devices
        while self.pushing:
            device = self.rng.choice(devices)
            n += 1
            body = {
                "delivery_type": "android",
                "target_id": device,
                "title": f"g{self.generation}-w{worker}-{n}",
                "content": "fault test",
                "msg_key": f"g{self.generation}-w{worker}-{n}",
            }
            try:
                response = await client.post("/v1/push/simple", json=body)
            except httpx.TransportError:
                self.push_failures += 1
                return  # the gateway is gone: this worker is done
            if response.status_code == 200:
                self.accepted[str(response.json()["message_id"])] = device
            else:
                self.push_failures += 1

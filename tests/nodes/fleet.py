"""Devices and pushers spread over the nodes of one gateway, every 2xx and reception recorded.

Each device connects to a node (its own, then the next one when that one is
gone), acks every push at once and reconnects forever; pushers push through
any live node. The oracle: every accepted push reached its device (0 lost) and
no device received a push addressed to another (0 misdelivered).
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
from tests.harness import APP, ServerProcess, hello_for, wait_until


@dataclass
class NodeFleet:
    nodes: list[ServerProcess]
    size: int
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    dead: set[int] = field(default_factory=set)  # indexes of nodes the test killed
    received: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    accepted: dict[str, str] = field(default_factory=dict)  # message_id -> device
    codes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    without_retry_after: int = 0
    welcomes: dict[int, int] = field(default_factory=lambda: defaultdict(int))  # node -> count
    pushing: bool = True
    prefix: str = "nf"  # of the device IDs
    _pushed: trio.Event = field(default_factory=trio.Event)

    @property
    def devices(self) -> list[str]:
        return [f"{self.prefix}-{i:03d}" for i in range(self.size)]

    def missing(self) -> dict[str, str]:
        return {m: d for m, d in self.accepted.items() if m not in self.received[d]}

    def misdelivered(self) -> list[tuple[str, str]]:
        return [
            (device, m)
            for device, ids in self.received.items()
            for m in ids
            if m in self.accepted and self.accepted[m] != device
        ]

    def live(self) -> list[int]:
        return [i for i in range(len(self.nodes)) if i not in self.dead]

    # --- devices --------------------------------------------------------------------

    def run_devices(self, nursery: trio.Nursery) -> None:
        for i, device in enumerate(self.devices):
            nursery.start_soon(self._device_loop, device, i % len(self.nodes))

    async def _device_loop(self, device: str, home: int) -> None:
        node = home
        while True:
            if node in self.dead:
                node = self.rng.choice(self.live())
            try:
                conn = await open_device_connection(
                    self.nodes[node].ws_url, connect_timeout=5.0, write_timeout=5.0
                )
            except (OSError, ConnectionClosed, trio.TooSlowError):
                node = (node + 1) % len(self.nodes)
                await trio.sleep(self.rng.uniform(0.05, 0.2))
                continue
            try:
                await self._serve(device, node, conn)
            except (ConnectionClosed, ProtocolError, trio.TooSlowError, OSError):
                pass
            finally:
                await conn.aclose()
            await trio.sleep(self.rng.uniform(0.05, 0.2))

    async def _serve(self, device: str, node: int, conn: DeviceConnection) -> None:
        await conn.send_frame(hello_for(device))
        with trio.fail_after(10):
            welcome = await conn.receive_frame()
        if not isinstance(welcome, Welcome):
            return
        self.welcomes[node] += 1
        while True:
            frame = await conn.receive_frame()
            if isinstance(frame, Push):
                self.received[device].add(frame.id)
                await conn.send_frame(Ack(ids=(frame.id,)))
            elif isinstance(frame, Bye):
                return

    # --- pushers --------------------------------------------------------------------

    async def push(self, workers: int) -> None:
        headers = {"authorization": f"Bearer {APP.api_key}"}
        try:
            async with trio.open_nursery() as nursery:
                for w in range(workers):
                    nursery.start_soon(self._pusher, w, headers)
        finally:
            self._pushed.set()

    async def stop_pushing(self) -> None:
        """Stop the pushers and wait for the answers of the pushes in flight."""
        self.pushing = False
        await self._pushed.wait()

    async def _pusher(self, worker: int, headers: dict[str, str]) -> None:
        n = 0
        async with httpx.AsyncClient(headers=headers, timeout=10.0) as client:
            while self.pushing:
                node = self.rng.choice(self.live())
                device = self.rng.choice(self.devices)
                n += 1
                body = {"delivery_type": "android", "target_id": device, "title": f"w{worker}",
                        "content": "many nodes", "msg_key": f"w{worker}-{n}"}  # fmt: skip
                try:
                    response = await client.post(
                        f"{self.nodes[node].api}/v1/push/simple", json=body
                    )
                except httpx.TransportError:
                    await trio.sleep(0.05)  # that node is gone (killed): another one next
                    continue
                self.codes[response.status_code] += 1
                if response.status_code == 200:
                    self.accepted[str(response.json()["message_id"])] = device
                elif response.status_code == 503:
                    self.without_retry_after += "retry-after" not in response.headers
                    await trio.sleep(0.05)

    async def accepted_reach(self, count: int) -> None:
        await wait_until(
            lambda: len(self.accepted) >= count, f"{count} pushes accepted", timeout=60
        )

    async def all_delivered(self) -> None:
        await wait_until(lambda: not self.missing(), "every accepted push delivered", timeout=60)

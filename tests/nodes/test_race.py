"""One device saying hello on two nodes at once, 100 times: exactly one connection lives."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from client_sim.transport import DeviceConnection
from protocol import Ping, Pong, Push
from tests.harness import SAFETY_NET, api_client, connect_device, push_simple, wait_until

from .support import Three, is_replaced

DEVICES = 100


@dataclass
class Watched:
    """A connection whose frames a task reads until it is told `bye`."""

    device: str
    conn: DeviceConnection
    frames: list[object] = field(default_factory=list)
    replaced: bool = False

    async def read(self) -> None:
        try:
            while not self.replaced:
                frame = await self.conn.receive_frame()
                self.frames.append(frame)
                self.replaced = is_replaced(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError):
            pass


async def test_simultaneous_hellos_on_two_nodes_leave_exactly_one_live_connection(
    three_nodes: Three,
) -> None:
    _, (a, b, c) = three_nodes
    pairs: dict[str, list[Watched]] = {}

    async def hello(url: str, device: str) -> None:
        conn, _ = await connect_device(url, device)
        pairs.setdefault(device, []).append(Watched(device, conn))

    async with trio.open_nursery() as nursery:
        for i in range(DEVICES):
            for node in (a, b):
                nursery.start_soon(hello, node.ws_url, f"race-{i}")
    watched = [w for pair in pairs.values() for w in pair]
    with trio.fail_after(SAFETY_NET * 3):
        async with trio.open_nursery() as readers:
            for w in watched:
                readers.start_soon(w.read)
            await wait_until(
                lambda: all(any(w.replaced for w in pair) for pair in pairs.values()),
                "one connection of every device replaced",
                timeout=SAFETY_NET * 2,
            )
            survivors = {d: [w for w in pair if not w.replaced] for d, pair in pairs.items()}
            assert all(len(s) == 1 for s in survivors.values()), survivors
            # Every survivor is alive and gets what is pushed to its device (via node C).
            async with api_client(c.api) as on_c:
                ids = {d: (await push_simple(on_c, d))["message_id"] for d in pairs}
            for (survivor,) in survivors.values():
                await survivor.conn.send_frame(Ping())

            def served() -> bool:
                return all(
                    any(isinstance(f, Push) and f.id == ids[d] for f in w.frames)
                    and any(isinstance(f, Pong) for f in w.frames)
                    for d, (w,) in survivors.items()
                )

            await wait_until(served, "every survivor pushed to and ponged")
            readers.cancel_scope.cancel()
    assert sum(w.replaced for w in watched) == DEVICES  # no survivor was replaced late
    for w in watched:
        await w.conn.aclose()

"""Several real `pushgate serve` nodes sharing one PostgreSQL schema and one Redis prefix."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from client_sim.transport import DeviceConnection
from protocol import Ack, Bye, Frame, Push
from tests.harness import (
    APP,
    ServerProcess,
    api_client,
    frames_before_pong,
    receive,
    start_server_process,
)

SWEEP = "0.5"  # seconds: how long a lost hint may delay a message in these tests
_names = itertools.count()


@dataclass
class Nodes:
    """Start nodes of one gateway (`start()`); every one is stopped at the end."""

    tmp_path: Path
    store: str  # postgresql:// URL of this test's own schema
    broker: str  # redis:// URL
    prefix: str  # this test's key prefix
    running: list[ServerProcess] = field(default_factory=list)

    def start(self, *extra: str, sweep: str = SWEEP) -> ServerProcess:
        log_name = self.tmp_path / f"node{next(_names)}.db"
        node = start_server_process(
            log_name,
            "--broker",
            self.broker,
            "--broker-prefix",
            self.prefix,
            "--sweep-interval",
            sweep,
            *extra,
            store=self.store,
        )
        self.running.append(node)
        return node

    def start_many(self, count: int, *extra: str) -> list[ServerProcess]:
        """`count` nodes started at once (each start waits for its address lines)."""
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: self.start(*extra), range(count)))

    def stop_all(self) -> None:
        for node in self.running:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait(timeout=10)
            node.close()

    def logs(self) -> str:
        return "\n".join(f"--- node {i}:\n{n.log()[-4000:]}" for i, n in enumerate(self.running))


Three = tuple[Nodes, list[ServerProcess]]  # the package's shared nodes (conftest.three_nodes)


@contextmanager
def clients(*nodes: ServerProcess) -> Iterator[list[httpx.AsyncClient]]:
    made = [api_client(n.api, APP) for n in nodes]
    yield made


async def pushes_until_pong(conn: DeviceConnection) -> list[Push]:
    frames = await frames_before_pong(conn)
    assert all(isinstance(f, Push) for f in frames), frames
    return [f for f in frames if isinstance(f, Push)]


async def receive_push(conn: DeviceConnection) -> Push:
    """The next push, skipping broadcasts (the package's nodes share one store: a device
    that connects after a broadcast of another test gets it in its backlog)."""
    while True:
        frame: Frame = await receive(conn)
        assert isinstance(frame, Push), frame
        if frame.push_type != "broadcast":
            return frame


async def ack(conn: DeviceConnection, *pushes: Push) -> None:
    await conn.send_frame(Ack(ids=tuple(p.id for p in pushes)))


def is_replaced(frame: Frame) -> bool:
    return isinstance(frame, Bye) and str(frame.reason) == "replaced"

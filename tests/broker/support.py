"""Test support for the broker: running brokers, a private redis-server, raw Redis access."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coredis
import trio

from gateway.broker import BrokerConfig, NodeInfo, RedisBroker, ResyncHook

MACHINE_REDIS = os.environ.get("PUSHGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")

# Short intervals so expiry and reconnects happen within a test; generous
# call timeouts so a busy machine does not fail a healthy call.
FAST = {
    "call_timeout": 2.0,
    "heartbeat_interval": 0.2,
    "node_ttl": 1.0,
    "route_refresh_interval": 0.5,
    "route_ttl": 3.0,
    "subscriber_keepalive": 1.0,
    "backoff_min": 0.05,
    "backoff_max": 0.5,
}


def fast_config(url: str, prefix: str, **overrides: Any) -> BrokerConfig:
    return BrokerConfig(url=url, prefix=prefix, **{**FAST, **overrides})


def node_info(node_id: str, **ports: int) -> NodeInfo:
    return NodeInfo(
        node_id=node_id,
        host="127.0.0.1",
        ports=ports or {"api": 8080, "ws": 8081, "tcp": 8082},
        pid=os.getpid(),
        started_ms=time.time_ns() // 1_000_000,
    )


@dataclass
class ResyncLog:
    """A resync hook that records its reasons; `wait_for` is the test's barrier."""

    reasons: list[str] = field(default_factory=list)
    _changed: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, reason: str, count: int = 1) -> None:
        while self.reasons.count(reason) < count:
            await self._changed.wait()


@asynccontextmanager
async def running_broker(
    config: BrokerConfig,
    node_id: str,
    *,
    on_resubscribed: ResyncHook | None = None,
    online_counts: Callable[[], Mapping[str, int]] | None = None,
) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(
        config, node_info(node_id), on_resubscribed=on_resubscribed, online_counts=online_counts
    )
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            await nursery.start(broker.run)
        yield broker
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[coredis.Redis[bytes]]:
    """A plain client for looking at and poking keys behind the broker's back."""
    async with coredis.Redis.from_url(url, stream_timeout=5, connect_timeout=5) as client:
        yield client


async def delete_prefixed(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (the cleanup after a test session)."""
    deleted = 0
    async with raw_client(url) as client:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.delete(batch)
                batch = []
        if batch:
            deleted += await client.delete(batch)
    return deleted


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """A redis-server of the test's own on a free port: the one tests may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the server vanishes with every key and connection."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.kill()

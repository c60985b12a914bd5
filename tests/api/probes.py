"""Measuring a real `pushgate serve` process from outside: memory, a bystander device's
ping→pong time, a bystander app's push latency, and raw HTTP requests that an
ordinary client would not send (huge declared lengths, bodies that never end)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import trio

from client_sim.transport import DeviceConnection
from protocol import Ping, Pong
from tests.harness import OTHER_APP, ServerProcess, api_client, connect_device, start_server_process


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process, from /proc/PID/status (VmHWM: its peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def peak_rss_mb(pid: int) -> float:
    return rss_mb(pid, "VmHWM")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


@contextmanager
def descriptor_limit(limit: int) -> Iterator[None]:
    """Processes started inside inherit a soft RLIMIT_NOFILE of `limit`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start_limited_server(db: Path, *extra: str, fd_limit: int) -> ServerProcess:
    with descriptor_limit(fd_limit):
        return start_server_process(db, *extra)


@dataclass
class Bystander:
    """A device connected before the trouble starts: its ping→pong times tell
    how long the gateway's event loop was held."""

    conn: DeviceConnection
    rtts: list[float] = field(default_factory=list)

    @classmethod
    async def connect(cls, server: ServerProcess, device: str = "bystander") -> Bystander:
        conn, _ = await connect_device(server.ws_url, device, app=OTHER_APP)
        return cls(conn)

    async def ping(self, timeout: float = 30.0) -> float:
        started = time.perf_counter()
        with trio.fail_after(timeout):
            await self.conn.send_frame(Ping())
            frame = await self.conn.receive_frame()
        assert isinstance(frame, Pong), frame
        rtt = time.perf_counter() - started
        self.rtts.append(rtt)
        return rtt

    async def ping_until(self, done: trio.Event, interval: float = 0.01) -> None:
        """Ping back to back until `done`: the worst time is the longest stall."""
        while not done.is_set():
            await self.ping()
            await trio.sleep(interval)

    @property
    def worst(self) -> float:
        return max(self.rtts, default=0.0)

    async def aclose(self) -> None:
        await self.conn.aclose()


async def bystander_push(server: ServerProcess, target: str = "bystander") -> float:
    """Seconds for another app's simple push to be answered (stored)."""
    async with api_client(server.api, OTHER_APP) as client:
        started = time.perf_counter()
        response = await client.post(
            "/v1/push/simple",
            json={"delivery_type": "android", "target_id": target, "title": "t", "content": "c"},
        )
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


async def healthz(server: ServerProcess, timeout: float = 30.0) -> float:
    async with httpx.AsyncClient(base_url=server.api, timeout=timeout) as client:
        started = time.perf_counter()
        response = await client.get("/healthz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "host: gateway",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class RawAnswer:
    status: int
    head: bytes
    body_bytes_sent: int
    seconds: float


async def send_body_until_answered(
    server: ServerProcess,
    head: bytes,
    *,
    total: int,
    chunk: bytes = b"[" + b"0," * 32_767,
    chunked: bool = False,
    timeout: float = 60.0,
) -> RawAnswer:
    """Send `head`, then body bytes (up to `total`) until the server answers; returns its
    status line and how much of the body went out before it did."""
    host, port = host_port(server.api)
    stream = await trio.open_tcp_stream(host, port)
    sent = 0
    answered = trio.Event()
    received = bytearray()
    started = time.perf_counter()

    async def send_body() -> None:
        nonlocal sent
        try:
            await stream.send_all(head)
            while sent < total and not answered.is_set():
                piece = chunk[: total - sent]
                data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
                await stream.send_all(data)
                sent += len(piece)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server answered and closed: what we measure

    async def read_answer() -> None:
        while b"\r\n\r\n" not in received:
            data = await stream.receive_some(65536)
            if not data:
                break
            received.extend(data)
        answered.set()

    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_body)
            await read_answer()
            nursery.cancel_scope.cancel()
    seconds = time.perf_counter() - started
    await trio.aclose_forcefully(stream)
    head_bytes = bytes(received).split(b"\r\n\r\n")[0]
    assert head_bytes.startswith(b"HTTP/1.1 "), head_bytes[:200]
    return RawAnswer(int(head_bytes.split()[1]), head_bytes, sent, seconds)

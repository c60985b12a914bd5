"""Test harness: a real gateway on free ports, in-process or as a child process."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar, cast

import httpx
import trio

from client_sim.connection import open_device_connection
from client_sim.transport import DeviceConnection
from gateway.clock import Clock, ManualClock
from gateway.server import Addresses, Gateway
from gateway.settings import AppDeclaration, Settings
from protocol import Frame, Hello, Ping, Pong, Welcome, device_token
from tests.store_pg.database import store_location

APP = AppDeclaration("app1", "key-app1", "secret-app1")
OTHER_APP = AppDeclaration("app2", "key-app2", "secret-app2")
START_MS = 1_795_000_000_000
T = TypeVar("T")


def hello_for(device: str, *, app: AppDeclaration = APP, platform: str = "android") -> Hello:
    return Hello(
        v=1,
        app=app.app_id,
        device=device,
        platform=platform,
        token=device_token(app.secret, app.app_id, device),
    )


@dataclass
class RunningGateway:
    gateway: Gateway
    addresses: Addresses
    clock: Clock
    settings: Settings
    apps: tuple[AppDeclaration, ...] = field(default_factory=tuple)

    @property
    def ws_url(self) -> str:
        return self.addresses.ws + "/v1/connect"

    @property
    def tcp_url(self) -> str:
        return self.addresses.tcp

    def url(self, transport: str) -> str:
        return self.ws_url if transport == "ws" else self.tcp_url

    def http(self, app: AppDeclaration = APP) -> httpx.AsyncClient:
        return api_client(self.addresses.api, app)

    async def connect(
        self,
        device: str,
        *,
        transport: str = "ws",
        app: AppDeclaration = APP,
        platform: str = "android",
    ) -> tuple[DeviceConnection, Welcome]:
        return await connect_device(self.url(transport), device, app=app, platform=platform)


def api_client(api: str, app: AppDeclaration = APP) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=api, headers={"authorization": f"Bearer {app.api_key}"}, timeout=10.0
    )


async def connect_device(
    url: str, device: str, *, app: AppDeclaration = APP, platform: str = "android"
) -> tuple[DeviceConnection, Welcome]:
    conn = await open_device_connection(url)
    await conn.send_frame(hello_for(device, app=app, platform=platform))
    welcome = await receive(conn)
    assert isinstance(welcome, Welcome), welcome
    return conn, welcome


# Timeouts in tests are safety nets, never measurements: generous, so that a busy
# machine only makes a passing test slower. Tests synchronise on events instead.
SAFETY_NET = 20.0


async def receive(conn: DeviceConnection, timeout: float = SAFETY_NET) -> Frame:
    with trio.fail_after(timeout):
        return await conn.receive_frame()


async def frames_before_pong(conn: DeviceConnection, timeout: float = SAFETY_NET) -> list[Frame]:
    """Send a ping and return every frame that arrives before its pong.

    A barrier: the gateway reads a connection's frames in order and writes its
    frames in order, so when the pong arrives, every frame sent before the ping
    has been handled, and everything queued for this connection by then (a push
    routed when an API call answered, a reply, a close) came before the pong.
    """
    frames: list[Frame] = []
    await conn.send_frame(Ping())
    while not isinstance(frame := await receive(conn, timeout), Pong):
        frames.append(frame)
    return frames


async def receive_nothing(conn: DeviceConnection) -> None:
    """Assert nothing is queued for this connection: the next frame is the pong of a
    ping (see `frames_before_pong`), not a push or anything else."""
    frames = await frames_before_pong(conn)
    assert frames == [], f"unexpected frames before the pong: {frames!r}"


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    timeout: float = SAFETY_NET,
    poll: float = 0.02,
) -> T:
    """Poll `condition` (a function or an async one) until it returns something true,
    and return that; fail naming `what` if it still has not after `timeout` seconds."""
    with trio.move_on_after(timeout):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return cast(T, result)
            await trio.sleep(poll)
    raise AssertionError(f"still waiting after {timeout} s for {what}")


def base_settings(db: Path, **overrides: object) -> Settings:
    settings = Settings(
        db=store_location(db),  # a PostgreSQL schema in the PostgreSQL pass (pg branch)
        api_port=0,
        ws_port=0,
        tcp_port=0,
        apps=(APP, OTHER_APP),
        shutdown_grace=2.0,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


@asynccontextmanager
async def running_gateway(
    db: Path, *, clock: Clock | None = None, **overrides: object
) -> AsyncIterator[RunningGateway]:
    settings = base_settings(db, **overrides)
    clock = clock or ManualClock(START_MS)
    gateway = Gateway(settings, clock=clock)
    async with trio.open_nursery() as nursery:
        addresses = await nursery.start(
            lambda task_status: gateway.run(task_status=task_status, announce=lambda _: None)
        )
        try:
            yield RunningGateway(gateway, addresses, clock, settings, settings.apps)
        finally:
            gateway.request_stop()


# --- the gateway as a real child process -------------------------------------------


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    api: str
    ws: str
    tcp: str
    log_path: Path

    @property
    def ws_url(self) -> str:
        return self.ws + "/v1/connect"

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.close()

    def terminate(self, timeout: float = 20.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.close()
        return code

    def close(self) -> None:
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server_process(
    db: Path,
    *extra: str,
    apps: tuple[AppDeclaration, ...] = (APP, OTHER_APP),
    store: str | None = None,
) -> ServerProcess:
    """Start `pushgate serve` on free ports and wait for its address lines.

    `store`: where it keeps its state instead of `db` (a postgresql:// URL); `db`
    still names its log file."""
    # store_location: a PostgreSQL schema in the PostgreSQL pass (pg branch)
    location = store or store_location(db)
    args = [sys.executable, "-m", "gateway.cli", "serve", "--db", location]
    args += ["--api-port", "0", "--ws-port", "0", "--tcp-port", "0"]
    for app in apps:
        args += ["--app", f"{app.app_id}:{app.api_key}:{app.secret}"]
    args += list(extra)
    log_path = db.with_suffix(f".{os.getpid()}.{len(list(db.parent.iterdir()))}.log")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log_file, env=env)
    found: dict[str, str] = {}
    assert process.stdout is not None
    while len(found) < 3:
        line = process.stdout.readline().decode().strip()
        if not line:
            process.kill()
            process.wait()
            process.stdout.close()
            raise RuntimeError(f"server exited early:\n{log_path.read_text()}")
        key, _, value = line.partition("=")
        if key in ("api", "ws", "tcp"):
            found[key] = value
    return ServerProcess(process, found["api"], found["ws"], found["tcp"], log_path)


async def push_simple(
    client: httpx.AsyncClient,
    target: str,
    *,
    delivery_type: str = "android",
    title: str = "title",
    content: str = "content",
    **extra: object,
) -> dict[str, object]:
    body = {
        "delivery_type": delivery_type,
        "target_id": target,
        "title": title,
        "content": content,
        **extra,
    }
    response = await client.post("/v1/push/simple", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def message_details(client: httpx.AsyncClient, message_id: object) -> dict[str, object]:
    response = await client.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    details: dict[str, object] = response.json()
    return details

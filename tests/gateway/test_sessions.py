"""Session life: welcome, ping, replacement, idle and hello timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from protocol import Bye, Error, Ping, Pong, Welcome
from tests.harness import RunningGateway, hello_for, receive, running_gateway, wait_until


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_welcome_and_ping_pong(gw: RunningGateway, transport: str) -> None:
    conn, welcome = await gw.connect("dev-p", transport=transport)
    assert welcome.heartbeat == 30
    assert welcome.server_time == gw.clock.now_ms()
    assert welcome.session
    await conn.send_frame(Ping())
    assert isinstance(await receive(conn), Pong)
    await conn.aclose()


async def test_second_hello_replaces_the_first_connection(gw: RunningGateway) -> None:
    first, _ = await gw.connect("dev-r")
    second, _ = await gw.connect("dev-r", transport="tcp")
    bye = await receive(first)
    assert isinstance(bye, Bye) and bye.reason == "replaced"
    with trio.fail_after(5), pytest.raises(ConnectionClosed):
        await first.receive_frame()
    await first.aclose()
    # The replacement is the live one.
    await second.send_frame(Ping())
    assert isinstance(await receive(second), Pong)
    assert gw.gateway.hub.is_online("app1", "dev-r")
    await second.aclose()


async def test_idle_connection_gets_bye_idle_timeout(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "idle.db", heartbeat=1) as gw:
        conn, welcome = await gw.connect("dev-idle")
        assert welcome.heartbeat == 1
        started = trio.current_time()
        bye = await receive(conn)
        assert isinstance(bye, Bye) and bye.reason == "idle_timeout"
        assert trio.current_time() - started >= 1.9  # 2 x heartbeat
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await conn.receive_frame()
        await conn.aclose()


async def test_pings_keep_a_connection_alive(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "alive.db", heartbeat=1) as gw:
        conn, _ = await gw.connect("dev-alive")
        # 2.5 s of pings 0.25 s apart: past the 2 s idle timeout, with an 8x margin.
        for _ in range(10):
            await trio.sleep(0.25)
            await conn.send_frame(Ping())
            assert isinstance(await receive(conn), Pong)
        await conn.aclose()


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_no_hello_within_the_timeout_closes(tmp_path: Path, transport: str) -> None:
    async with running_gateway(tmp_path / "hello.db", hello_timeout=0.5) as gw:
        conn = await open_device_connection(gw.url(transport))
        frame = await receive(conn)
        assert isinstance(frame, Error) and frame.code == "hello_timeout"
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await conn.receive_frame()
        await conn.aclose()


async def test_device_offline_after_disconnect(gw: RunningGateway) -> None:
    conn, _ = await gw.connect("dev-gone")
    async with gw.http() as client:
        assert (await client.get("/v1/devices/dev-gone")).json()["online"] is True
        await conn.aclose()

        async def offline() -> bool:
            return (await client.get("/v1/devices/dev-gone")).json()["online"] is False

        await wait_until(offline, "dev-gone offline")


async def test_hello_is_checked_for_each_connection(gw: RunningGateway) -> None:
    conn = await open_device_connection(gw.ws_url)
    await conn.send_frame(hello_for("dev-h"))
    assert isinstance(await receive(conn), Welcome)
    await conn.send_frame(hello_for("dev-h"))  # a second hello on the same connection
    frame = await receive(conn)
    assert isinstance(frame, Error) and frame.code == "bad_hello"
    await conn.send_frame(Ping())  # a reply error: the connection lives on
    assert isinstance(await receive(conn), Pong)
    await conn.aclose()

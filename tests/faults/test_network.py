"""Dead and slow networks between device and gateway, through the fault proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from client_sim.errors import ConnectionClosed
from client_sim.transport import DeviceConnection
from protocol import Ack, Ping, Pong, Push
from tests.harness import (
    ServerProcess,
    api_client,
    connect_device,
    push_simple,
    receive,
    start_server_process,
    wait_until,
)

from .common import assert_clean_log, port_of, rss_kib
from .proxy import FaultProxy, Mode

BIG = "z" * 3000
ROUNDS = 40  # x 10 pushes of 3 KB to the stalled device, 1 to each healthy one


@asynccontextmanager
async def proxy_to(server_url: str) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy("127.0.0.1", port_of(server_url))
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        yield proxy
        nursery.cancel_scope.cancel()


async def push_id(client: httpx.AsyncClient, device: str, title: str) -> str:
    return str((await push_simple(client, device, title=title))["message_id"])


async def online(client: httpx.AsyncClient, device: str) -> bool:
    response = await client.get(f"/v1/devices/{device}")
    assert response.status_code == 200, response.text
    return bool(response.json()["online"])


async def offline(client: httpx.AsyncClient, device: str) -> bool:
    return not await online(client, device)


async def receive_pushes(conn: DeviceConnection, count: int, timeout: float = 10) -> list[str]:
    ids: list[str] = []
    with trio.fail_after(timeout):
        while len(ids) < count:
            frame = await conn.receive_frame()
            if isinstance(frame, Push):
                ids.append(frame.id)
    return ids


async def test_half_open_device_goes_offline_and_gets_its_messages_later(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "halfopen.db", "--heartbeat", "1")
    server_processes.append(server)
    async with api_client(server.api) as client, proxy_to(server.ws) as proxy:
        conn, welcome = await connect_device(proxy.url("ws"), "ghost")
        assert welcome.heartbeat == 1
        # Pings keep it online past the idle timeout (2 s).
        for _ in range(5):
            await conn.send_frame(Ping())
            assert isinstance(await receive(conn), Pong)
            await trio.sleep(0.5)
        assert await online(client, "ghost")

        proxy.set_mode(Mode.BLACKHOLE)  # the cable is pulled: no FIN, no RST
        before = [await push_id(client, "ghost", f"b{i}") for i in range(3)]
        with trio.move_on_after(0.3):  # the device still pings into the void
            await conn.send_frame(Ping())
        await wait_until(lambda: offline(client, "ghost"), "ghost offline")
        after = [await push_id(client, "ghost", f"a{i}") for i in range(3)]
        for message_id in before + after:
            details = (await client.get(f"/v1/messages/{message_id}")).json()
            assert details["status"] == 0, details  # still queued, not lost
        await conn.aclose()

        proxy.set_mode(Mode.PASS)
        conn, _ = await connect_device(proxy.url("ws"), "ghost")
        got = await receive_pushes(conn, 6)
        assert got == before + after
        await conn.send_frame(Ack(ids=tuple(got)))
        await conn.send_frame(Ping())
        assert isinstance(await receive(conn), Pong)
        await conn.aclose()
        details = (await client.get(f"/v1/messages/{after[-1]}")).json()
        assert details["status"] == 2
    assert server.terminate() == 0
    assert "event=idle_timeout app=app1 device=ghost" in server.log()
    assert_clean_log(server)


async def until_closed(conn: DeviceConnection) -> None:
    """Read (and drop) frames until the connection ends."""
    with trio.fail_after(5):
        while True:
            try:
                await conn.receive_frame()
            except ConnectionClosed:
                return


async def test_device_that_never_reads_is_dropped_and_others_keep_flowing(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "stall.db", "--outbox-limit", "64")
    server_processes.append(server)
    async with api_client(server.api) as client, proxy_to(server.tcp) as proxy:
        sloth, _ = await connect_device(proxy.url("tcp"), "sloth")
        healthy = [await connect_device(server.ws_url, f"busy-{i}") for i in range(2)]
        healthy += [await connect_device(server.tcp, f"busy-{i}") for i in range(2, 4)]
        # Warm up (allocator, page cache), then take the baseline.
        for _ in range(100):
            await push_simple(client, "warmup", content=BIG)
        baseline = rss_kib(server.process.pid)

        proxy.set_mode(Mode.STALL)  # the device stops reading; its socket fills
        sent: dict[str, list[str]] = {f"busy-{i}": [] for i in range(4)}
        sloth_ids: list[str] = []

        received: dict[str, list[str]] = {}

        async def reader(index: int, conn: DeviceConnection) -> None:
            got = await receive_pushes(conn, ROUNDS, timeout=30)
            await conn.send_frame(Ack(ids=tuple(got)))
            received[f"busy-{index}"] = got

        async with trio.open_nursery() as nursery:
            for index, (conn, _) in enumerate(healthy):
                nursery.start_soon(reader, index, conn)
            for round_ in range(ROUNDS):
                for _ in range(10):
                    answer = await push_simple(client, "sloth", content=BIG)
                    sloth_ids.append(str(answer["message_id"]))
                for device, ids in sent.items():
                    answer = await push_simple(client, device, title=f"r{round_}")
                    ids.append(str(answer["message_id"]))
        assert received == sent
        # The sloth was cut off (outbox full or send timeout), not buffered.
        await wait_until(lambda: offline(client, "sloth"), "the sloth cut off")
        grown = rss_kib(server.process.pid) - baseline
        assert grown < 16_000, f"server memory grew by {grown} KiB"
        assert "reason='outbox full (slow consumer)'" in server.log() or (
            "reason='send failed or timed out'" in server.log()
        )
        for conn, _ in healthy:
            await conn.aclose()
        await sloth.aclose()

        # Nothing was lost: back on a working network it gets every one.
        sloth, _ = await connect_device(server.tcp, "sloth")
        got = await receive_pushes(sloth, len(sloth_ids), timeout=30)
        assert got == sloth_ids
        await sloth.aclose()
    assert server.terminate() == 0
    assert_clean_log(server)


@pytest.mark.parametrize(("mode", "transport"), [(Mode.DELAY, "ws"), (Mode.TRICKLE, "tcp")])
async def test_slow_links_still_deliver_in_order(
    tmp_path: Path, server_processes: list[ServerProcess], mode: Mode, transport: str
) -> None:
    server = start_server_process(tmp_path / "slow.db")
    server_processes.append(server)
    upstream = server.ws if transport == "ws" else server.tcp
    async with api_client(server.api) as client, proxy_to(upstream) as proxy:
        proxy.set_mode(mode)  # the handshake and hello crawl too
        conn, _ = await connect_device(proxy.url(transport), "snail")
        ids = [(await push_simple(client, "snail", title=f"s{i}"))["message_id"] for i in range(10)]
        got = await receive_pushes(conn, 10, timeout=20)
        assert got == ids
        await conn.send_frame(Ack(ids=tuple(got)))
        await conn.send_frame(Ping())
        assert isinstance(await receive(conn, timeout=10), Pong)
        await conn.aclose()
        details = (await client.get(f"/v1/messages/{ids[-1]}")).json()
        assert details["status"] == 2
    assert server.terminate() == 0
    assert_clean_log(server)


async def test_connection_reset_mid_stream_loses_nothing(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "reset.db")
    server_processes.append(server)
    async with api_client(server.api) as client, proxy_to(server.ws) as proxy:
        conn, _ = await connect_device(proxy.url("ws"), "rst")
        ids = [(await push_simple(client, "rst", title=f"m{i}"))["message_id"] for i in range(20)]
        first = await receive_pushes(conn, 5)
        await conn.send_frame(Ack(ids=tuple(first)))
        await conn.send_frame(Ping())  # the ack is read before this ping's pong
        while not isinstance(await receive(conn), Pong):
            pass
        proxy.set_mode(Mode.RESET)
        await until_closed(conn)
        await conn.aclose()
        await wait_until(lambda: offline(client, "rst"), "rst offline")
        proxy.set_mode(Mode.PASS)
        conn, _ = await connect_device(proxy.url("ws"), "rst")
        rest = await receive_pushes(conn, 15)
        assert rest == ids[5:]
        await conn.aclose()
    assert server.terminate() == 0
    assert_clean_log(server)

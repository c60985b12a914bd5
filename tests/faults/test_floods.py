"""Slow clients and floods: hello timeout, slowloris, the connection limit, a reconnect storm."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed, HandshakeError
from client_sim.transport import DeviceConnection
from protocol import Ack, Error, Ping, Pong, Push, encode
from protocol.framing import prefix
from tests.harness import (
    ServerProcess,
    api_client,
    connect_device,
    hello_for,
    receive,
    start_server_process,
    wait_until,
)

from .common import assert_clean_log, port_of, rss_kib

HELLO_TIMEOUT = 1.0
# Upper bounds on when a timeout fires: generous, so that a busy machine passes and a
# timeout that never fires still fails.
LATE = HELLO_TIMEOUT + 10


@pytest.fixture
def slow_server(tmp_path: Path, server_processes: list[ServerProcess]) -> ServerProcess:
    server = start_server_process(
        tmp_path / "slow.db", "--hello-timeout", str(HELLO_TIMEOUT), "--max-connections", "6"
    )
    server_processes.append(server)
    return server


async def expect_error_then_close(conn: DeviceConnection, code: str) -> None:
    frame = await receive(conn, timeout=LATE)
    assert isinstance(frame, Error) and frame.code == code, frame
    with pytest.raises(ConnectionClosed), trio.fail_after(5):
        await conn.receive_frame()
    await conn.aclose()


async def drip(stream: trio.SocketStream, data: bytes, interval: float) -> float:
    """Send one byte at a time; returns when the peer hangs up (seconds taken)."""
    start = trio.current_time()
    try:
        for i in range(len(data)):
            await stream.send_all(data[i : i + 1])
            await trio.sleep(interval)
        with trio.fail_after(5):
            while await stream.receive_some(4096):
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    return trio.current_time() - start


async def test_silent_connections_are_closed_at_the_hello_timeout(
    slow_server: ServerProcess,
) -> None:
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for url in (slow_server.ws_url, slow_server.tcp):
            conn = await open_device_connection(url)
            nursery.start_soon(expect_error_then_close, conn, "hello_timeout")
    elapsed = trio.current_time() - started
    assert HELLO_TIMEOUT * 0.8 <= elapsed < LATE


@pytest.mark.parametrize("transport", ["ws-handshake", "tcp-hello"])
async def test_byte_by_byte_clients_are_cut_at_the_hello_timeout(
    slow_server: ServerProcess, transport: str
) -> None:
    if transport == "ws-handshake":
        port = port_of(slow_server.ws)
        data = (
            f"GET /v1/connect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    else:
        port = port_of(slow_server.tcp)
        payload = encode(hello_for("drip"))
        data = prefix(payload) + payload
    interval = 0.1
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        taken = await drip(stream, data, interval)
    finally:
        await stream.aclose()
    # Cut off long before the last byte could have been sent.
    assert taken < len(data) * interval * 0.8, (taken, len(data))
    assert taken < LATE
    await assert_serves(slow_server)


async def assert_serves(server: ServerProcess) -> None:
    conn, _ = await connect_device(server.ws_url, "bystander")
    await conn.send_frame(Ping())
    assert isinstance(await receive(conn), Pong)
    await conn.aclose()


async def test_connection_limit_refuses_politely_and_frees_slots(
    slow_server: ServerProcess,
) -> None:
    held = [await connect_device(slow_server.ws_url, f"held-{i}") for i in range(3)]
    held += [await connect_device(slow_server.tcp, f"held-{i}") for i in range(3, 6)]

    # WebSocket: an HTTP 503 with a body saying why, and Retry-After.
    with pytest.raises(HandshakeError) as refused:
        await open_device_connection(slow_server.ws_url)
    assert refused.value.status_code == 503
    response = await raw_upgrade(port_of(slow_server.ws))
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), response
    assert b"retry-after: 5" in head.lower()
    assert b"connection limit" in body
    # TCP: an error frame server_busy, then the close.
    conn = await open_device_connection(slow_server.tcp)
    await conn.send_frame(hello_for("one-too-many"))
    await expect_error_then_close(conn, "server_busy")

    # Those inside are unaffected.
    for conn, _ in held:
        await conn.send_frame(Ping())
        assert isinstance(await receive(conn), Pong)
    # A slot freed is a slot taken again.
    gone, _ = held.pop()
    await gone.aclose()

    async def connect_late() -> DeviceConnection | None:
        try:
            conn, _ = await connect_device(slow_server.ws_url, "late")
        except HandshakeError:
            return None
        return conn

    conn = await wait_until(connect_late, "a slot for a new connection")
    await conn.aclose()
    for conn, _ in held:
        await conn.aclose()
    assert slow_server.terminate() == 0
    assert "event=connection_refused reason=max_connections limit=6" in slow_server.log()
    assert_clean_log(slow_server)


async def raw_upgrade(port: int) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    request = (
        f"GET /v1/connect HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    data = b""
    try:
        await stream.send_all(request)
        with trio.fail_after(5):
            while chunk := await stream.receive_some(4096):
                data += chunk
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()
    return data


STORM = 2000


async def test_reconnect_storm_loses_nothing_and_memory_stays_bounded(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "storm.db")
    server_processes.append(server)
    devices = [f"s{i:04d}" for i in range(STORM)]
    expected: dict[str, list[str]] = {d: [] for d in devices}
    received: dict[str, list[str]] = {d: [] for d in devices}
    conns: dict[str, DeviceConnection] = {}

    async def push_round(client: object, label: str) -> None:
        for start in range(0, STORM, 1000):
            chunk = devices[start : start + 1000]
            body = {
                "delivery_type": "android",
                "targets": [{"target_id": d} for d in chunk],
                "title": label,
                "content": "storm",
            }
            response = await client.post("/v1/push/multiple", json=body)  # type: ignore[attr-defined]
            assert response.status_code == 200, response.text
            for item in response.json()["messages"]:
                expected[item["target_id"]].append(item["message_id"])

    async def connect_all() -> None:
        async def one(device: str) -> None:
            url = server.ws_url if int(device[1:]) % 4 == 0 else server.tcp  # WS costs more
            conns[device], _ = await connect_device(url, device)

        async with trio.open_nursery() as nursery:
            for device in devices:
                nursery.start_soon(one, device)

    async def take_all(count: int) -> None:
        async def one(device: str) -> None:
            conn = conns[device]
            with trio.fail_after(30):
                while len(set(received[device])) < count:
                    frame = await conn.receive_frame()
                    assert isinstance(frame, Push), frame
                    received[device].append(frame.id)
                    await conn.send_frame(Ack(ids=(frame.id,)))

        async with trio.open_nursery() as nursery:
            for device in devices:
                nursery.start_soon(one, device)

    async def drop_all() -> None:
        for conn in conns.values():
            stream = conn._stream  # an abrupt drop: RST, no close handshake
            if isinstance(stream, trio.SocketStream):
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            await trio.aclose_forcefully(stream)
        conns.clear()

    async with api_client(server.api) as client:
        await push_round(client, "while offline")
        with trio.fail_after(60):
            await connect_all()  # storm 1: everyone at once, each with a backlog
            await take_all(1)
            await push_round(client, "while online")
            await take_all(2)
            first = rss_kib(server.process.pid)
            await drop_all()
            await push_round(client, "while dropping")
            await connect_all()  # storm 2: everyone back at once
            await take_all(3)
            second = rss_kib(server.process.pid)
        for conn in conns.values():
            await conn.aclose()
    assert {d: set(ids) for d, ids in received.items()} == {
        d: set(ids) for d, ids in expected.items()
    }
    grown = second - first
    assert grown < 20_000, f"{STORM} reconnects grew the server by {grown} KiB"
    assert server.terminate() == 0
    assert_clean_log(server)

"""The gateway as a real child process: restarts, kill -9, and signals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio

from protocol import Ack, Bye, Push
from tests.harness import (
    ServerProcess,
    api_client,
    connect_device,
    push_simple,
    receive,
    receive_nothing,
    start_server_process,
    wait_until,
)


async def drain_pushes(conn: object, count: int, timeout: float = 20.0) -> list[str]:
    ids: list[str] = []
    with trio.fail_after(timeout):
        while len(ids) < count:
            frame = await conn.receive_frame()  # type: ignore[attr-defined]
            assert isinstance(frame, Push), frame
            ids.append(frame.id)
    return ids


async def test_restart_keeps_the_queue(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "restart.db"
    server = start_server_process(db)
    server_processes.append(server)
    async with api_client(server.api) as client:
        ids = [(await push_simple(client, "dev-q", title=f"m{i}"))["message_id"] for i in range(5)]
    conn, _ = await connect_device(server.ws_url, "dev-q")
    got = await drain_pushes(conn, 5)
    assert got == ids
    await conn.send_frame(Ack(ids=tuple(got[:2])))
    await receive_nothing(conn)  # the ack was read: committed by the shutdown at the latest
    await conn.aclose()
    assert server.terminate() == 0

    server = start_server_process(db)
    server_processes.append(server)
    conn, _ = await connect_device(server.tcp, "dev-q")
    assert await drain_pushes(conn, 3) == ids[2:]
    await receive_nothing(conn)
    await conn.aclose()
    assert server.terminate() == 0


async def test_kill_9_after_accepted_pushes_loses_none(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    db = tmp_path / "crash.db"
    server = start_server_process(db)
    server_processes.append(server)
    accepted: list[str] = []
    async with api_client(server.api) as client:

        async def pusher(worker: int) -> None:
            for i in range(50):
                answer = await push_simple(client, f"dev-k{worker % 2}", title=f"{worker}-{i}")
                accepted.append(str(answer["message_id"]))

        async with trio.open_nursery() as nursery:
            for worker in range(4):
                nursery.start_soon(pusher, worker)
    assert len(accepted) == 200
    server.kill9()  # no shutdown, no flush: only what was committed survives

    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    server = start_server_process(db)
    server_processes.append(server)
    received: list[str] = []
    for device in ("dev-k0", "dev-k1"):
        conn, _ = await connect_device(server.ws_url, device)
        received += await drain_pushes(conn, 100)
        await receive_nothing(conn)
        await conn.aclose()
    assert sorted(received) == sorted(accepted)
    assert server.terminate() == 0


async def test_sigterm_says_bye_shutdown_and_exits_0(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "term.db")
    server_processes.append(server)
    ws_conn, _ = await connect_device(server.ws_url, "dev-t1")
    tcp_conn, _ = await connect_device(server.tcp, "dev-t2")
    server.process.send_signal(15)
    for conn in (ws_conn, tcp_conn):
        frame = await receive(conn, timeout=10)
        assert isinstance(frame, Bye) and frame.reason == "shutdown"
    await wait_until(lambda: server.process.poll() is not None, "the server to exit")
    assert server.process.returncode == 0
    assert "event=shutdown_started" in server.log()
    await ws_conn.aclose()
    await tcp_conn.aclose()


async def test_first_run_creates_a_demo_app(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    import subprocess
    import sys

    db = tmp_path / "demo.db"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gateway.cli", "serve", "--db", str(db)),
            *("--api-port", "0", "--ws-port", "0", "--tcp-port", "0"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines = dict(process.stdout.readline().decode().strip().split("=", 1) for _ in range(6))
    assert lines["app_id"] == "demo"
    async with api_client(
        lines["api"], app=_decl("demo", lines["api_key"], lines["secret"])
    ) as client:
        answer = await push_simple(client, "phone")
        assert answer["status"] == 0
    conn, _ = await connect_device(
        lines["ws"] + "/v1/connect", "phone", app=_decl("demo", lines["api_key"], lines["secret"])
    )
    frame = await receive(conn)
    assert isinstance(frame, Push)
    await conn.aclose()
    process.terminate()
    assert process.wait(timeout=20) == 0
    process.stdout.close()


def _decl(app_id: str, key: str, secret: str):  # type: ignore[no-untyped-def]
    from gateway.settings import AppDeclaration

    return AppDeclaration(app_id, key, secret)


def test_app_create_prints_credentials(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "apps.db"
    out = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "app", "create", "shop", "--db", str(db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert fields["app_id"] == "shop"
    assert len(fields["api_key"]) >= 24 and len(fields["secret"]) >= 24
    again = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "app", "create", "shop", "--db", str(db)],
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "already exists" in again.stderr

"""Issue 9 against a real `pushgate serve` process: every cost bounded before it is paid.

Each test measures the bound it proves: the server's memory (RSS from /proc),
a bystander device's ping→pong time (how long the event loop was held) and a
bystander app's push latency. The limits asserted are far below what the same
requests cost before the fix (figures in the comments, this 2-core machine)
and far above what a busy machine needs, so they test behaviour, not speed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import trio

from gateway.clock import ManualClock
from gateway.store import RETENTION_MS, NewMessage, SqliteStore
from protocol import Push
from tests.api.probes import (
    Bystander,
    bystander_push,
    healthz,
    host_port,
    open_fds,
    peak_rss_mb,
    request_head,
    rss_mb,
    send_body_until_answered,
    start_limited_server,
)
from tests.harness import APP, ServerProcess, api_client, receive, start_server_process

MB = 1024 * 1024
POST_MULTIPLE = "/v1/push/multiple"


@pytest.fixture
async def bystanders() -> AsyncIterator[list[Bystander]]:
    made: list[Bystander] = []
    yield made
    for bystander in made:
        await bystander.aclose()


def _start(tmp_path: Path, processes: list[ServerProcess], *extra: str) -> ServerProcess:
    server = start_server_process(tmp_path / "gw.db", "--rate-limit", "0", *extra)
    processes.append(server)
    return server


async def test_a_huge_body_is_refused_before_it_is_read(
    tmp_path: Path, server_processes: list[ServerProcess], bystanders: list[Bystander]
) -> None:
    """Before: a 100 MB body with no key was read and parsed before the 401 (7.9 s, 775 MB)."""
    server = _start(tmp_path, server_processes)
    bystander = await Bystander.connect(server)
    bystanders.append(bystander)
    await bystander.ping()
    rss_before = rss_mb(server.process.pid)
    json_head = {"content-type": "application/json"}

    for auth in ({}, {"authorization": "Bearer wrong-key"}):
        head = request_head(
            "POST", POST_MULTIPLE, {**json_head, **auth, "content-length": "100000000"}
        )
        answer = await send_body_until_answered(server, head, total=100_000_000)
        assert answer.status == 401, answer.head
        assert answer.body_bytes_sent < 16 * MB  # what the socket buffers took, not the body
        assert answer.seconds < 10

    valid = {**json_head, "authorization": f"Bearer {APP.api_key}"}
    # A declared length over the route's limit: 413 before a byte of the body.
    head = request_head("POST", POST_MULTIPLE, {**valid, "content-length": str(17 * MB)})
    answer = await send_body_until_answered(server, head, total=0)
    assert (answer.status, answer.body_bytes_sent) == (413, 0)
    head = request_head("POST", "/v1/push/simple", {**valid, "content-length": str(2 * MB)})
    assert (await send_body_until_answered(server, head, total=0)).status == 413

    # No length (chunked): 413 once the streamed bytes pass the limit (16 MiB here).
    head = request_head("POST", POST_MULTIPLE, {**valid, "transfer-encoding": "chunked"})
    answer = await send_body_until_answered(server, head, total=100_000_000, chunked=True)
    assert answer.status == 413, answer.head
    assert 16 * MB < answer.body_bytes_sent < 40 * MB

    grown = rss_mb(server.process.pid) - rss_before
    assert grown < 100, f"the gateway grew by {grown:.0f} MB"
    assert await bystander.ping() < 1.0


async def test_a_large_body_is_parsed_without_holding_the_devices(
    tmp_path: Path, server_processes: list[ServerProcess], bystanders: list[Bystander]
) -> None:
    """Before: a device's ping→pong went from 0.8 ms to 2 s while a 40 MB body was parsed;
    a 15 MB body of tiny JSON tokens held the event loop ~1.7 s in one json.loads."""
    server = _start(tmp_path, server_processes)
    bystander = await Bystander.connect(server)
    bystanders.append(bystander)
    # 15 MB of the slowest JSON there is (`[],` decodes to a 56-byte list: 5 million
    # of them, ~300 MB), in a member the push does not use, then ten real targets.
    dense = "[" + ",".join(["[]"] * 20_000) + "]"
    junk = ",".join([dense] * 250)
    targets = json.dumps([{"target_id": f"d-{i}"} for i in range(10)])
    body = (
        '{"delivery_type": "android", "title": "t", "content": "c",'
        f' "junk": [{junk}], "targets": {targets}}}'
    ).encode()
    assert 14 * MB < len(body) < 16 * MB
    json.loads(body)  # valid JSON, and a valid push
    peak_before = peak_rss_mb(server.process.pid)
    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bystander.ping_until, done)
        async with api_client(server.api) as client:
            client.timeout = 60
            response = await client.post(POST_MULTIPLE, content=body)
        done.set()
    assert response.status_code == 200, response.text
    assert len(response.json()["messages"]) == 10
    assert len(bystander.rtts) >= 5
    assert bystander.worst < 0.5, f"a device waited {bystander.worst:.3f} s for its pong"
    # Each piece is decoded, checked and dropped: the 300 MB never exist at once.
    peak = peak_rss_mb(server.process.pid) - peak_before
    assert peak < 120, f"the gateway's peak memory grew by {peak:.0f} MB"


async def test_a_template_bomb_is_refused_before_it_is_rendered(
    tmp_path: Path, server_processes: list[ServerProcess], bystanders: list[Bystander]
) -> None:
    """Before: a 64 KB template of `#a#` x 21,845 and one 10 KB value took 1.3 GB and held
    every device ~2 s before the 413."""
    server = _start(tmp_path, server_processes)
    bystander = await Bystander.connect(server)
    bystanders.append(bystander)
    rss_before = rss_mb(server.process.pid)
    async with api_client(server.api) as client:
        response = await client.put(
            "/v1/templates/bomb", json={"title": "#a#" * 21_845, "content": "x"}
        )
        assert response.status_code == 200, response.text
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander.ping_until, done)
            for _ in range(3):
                response = await client.post(
                    "/v1/push/template",
                    json={
                        "delivery_type": "android",
                        "target_id": "victim",
                        "template": "bomb",
                        "template_kv": {"a": "v" * 10_000},
                    },
                )
                assert response.status_code == 413, response.text
                error = response.json()["error"]
                assert error["code"] == "payload_too_large"
                assert "218450001 bytes" in error["message"]  # known before rendering
            done.set()
    grown = rss_mb(server.process.pid) - rss_before
    assert grown < 50, f"the gateway grew by {grown:.0f} MB"
    assert bystander.worst < 0.5, f"a device waited {bystander.worst:.3f} s for its pong"
    assert await bystander_push(server) < 5


async def _hold_slow_connections(
    server: ServerProcess, count: int, held: list[trio.SocketStream]
) -> None:
    """Open `count` API connections that never finish a request: each sends a whole
    head and one byte of a 1000-byte body (a head that stops midway is hypercorn's:
    it drops it after --http-idle-timeout)."""
    host, port = host_port(server.api)
    slow_body = request_head(
        "POST",
        "/v1/push/simple",
        {"authorization": f"Bearer {APP.api_key}", "content-length": "1000"},
    )
    for _ in range(count):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            continue  # the backlog is full for a moment: part of being flooded
        held.append(stream)
        with trio.move_on_after(1):
            try:
                await stream.send_all(slow_body + b"{")
            except trio.BrokenResourceError:
                pass


async def test_slow_api_clients_take_neither_descriptors_nor_devices_nor_pushes(
    tmp_path: Path, server_processes: list[ServerProcess], bystanders: list[Bystander]
) -> None:
    """Before: 1,100 connections that sent headers then one body byte were held forever;
    under a 1,024-descriptor limit they took every descriptor: devices, /healthz and
    pushes were all refused."""
    server = start_limited_server(
        tmp_path / "gw.db",
        "--rate-limit",
        "0",
        "--max-api-connections",
        "200",
        "--max-connections",
        "600",
        "--http-body-timeout",
        "3",
        "--http-idle-timeout",
        "3",
        fd_limit=1024,
    )
    server_processes.append(server)
    bystander = await Bystander.connect(server)
    bystanders.append(bystander)
    held: list[trio.SocketStream] = []
    try:
        await _hold_slow_connections(server, 1100, held)
        assert len(held) >= 1000
        # While they are held: /healthz, another app's push and devices all work.
        assert await healthz(server) < 5
        assert await bystander_push(server) < 5
        frame = await receive(bystander.conn)
        assert isinstance(frame, Push)
        assert await bystander.ping() < 5
        late = await Bystander.connect(server, "late-device")
        bystanders.append(late)
        assert await late.ping() < 5
        assert open_fds(server.process.pid) < 1024
    finally:
        for stream in held:
            await trio.aclose_forcefully(stream)


async def test_a_device_flood_does_not_take_the_api(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    """And the other way round: devices past --max-connections are refused, and the API
    keeps answering."""
    server = start_limited_server(
        tmp_path / "gw.db",
        "--max-api-connections",
        "200",
        "--max-connections",
        "600",
        fd_limit=1024,
    )
    server_processes.append(server)
    host, port = host_port(server.tcp)
    held: list[trio.SocketStream] = []
    try:
        for _ in range(1100):
            try:
                held.append(await trio.open_tcp_stream(host, port))
            except OSError:
                continue
        assert len(held) >= 1000
        assert await healthz(server) < 5
        assert await bystander_push(server) < 5
        assert open_fds(server.process.pid) < 1024
    finally:
        for stream in held:
            await trio.aclose_forcefully(stream)


def _old_broadcasts(db: Path, broadcasts: int, devices: int) -> None:
    """A database holding `broadcasts` broadcasts 31 days old, each delivered to `devices`."""
    old = int(time.time() * 1000) - RETENTION_MS - 86_400_000

    async def create() -> None:
        store = SqliteStore(str(db), clock=ManualClock(old))
        await store.open()
        try:
            app = await store.upsert_app(
                app_id=APP.app_id, name=APP.app_id, api_key=APP.api_key, secret="s", verify=False
            )
            item = NewMessage(
                push_type="broadcast", delivery_type="all", target_id="", title="t", content="c"
            )
            await store.insert_messages(
                app, [replace(item, msg_key=f"old-{i}") for i in range(broadcasts)]
            )
        finally:
            await store.aclose()

    trio.run(create)
    conn = sqlite3.connect(db)
    with conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM messages")]
        conn.executemany(
            "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at,"
            " modified_at) VALUES (?, ?, ?, 0, ?, ?)",
            ((seq, APP.app_id, f"dev-{d}", old, old) for seq in seqs for d in range(devices)),
        )
    conn.close()


def test_retention_purges_in_small_operations_while_pushes_go_on(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    """Before: 50 expired broadcasts with 20,000 deliveries each were one purge operation
    that blocked every push for 2.9 s."""
    db = tmp_path / "gw.db"
    _old_broadcasts(db, 30, 20_000)
    server = start_server_process(db, "--rate-limit", "0")  # the purge starts at once
    server_processes.append(server)

    async def push_while_purging() -> list[float]:
        latencies = []
        with trio.fail_after(120):
            while True:
                latencies.append(await bystander_push(server))
                async with httpx.AsyncClient(base_url=server.api) as client:
                    metrics = (await client.get("/metrics")).text
                if "pushgate_messages_purged_total 30.0" in metrics:
                    return latencies

    latencies = trio.run(push_while_purging)
    assert len(latencies) >= 5  # pushes went on while 600,000 deliveries were purged
    assert max(latencies) < 0.6, f"a push waited {max(latencies):.2f} s behind the purge"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute(
            "SELECT count(*) FROM deliveries WHERE app_id = ?", (APP.app_id,)
        ).fetchone() == (0,)
    finally:
        conn.close()

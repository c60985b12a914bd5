"""Figures for issue 9 items 1, 2, 5 and 8: what each hostile request costs a real gateway.

    .venv/bin/python -m tests.api.edge_figures [--gateway TREE] [bodies] [flood] [purge]

measures the gateway of this tree, or the one in TREE (another version's
source, e.g. `git archive ed6bd70 | tar -x -C /tmp/before`), which the
`pushgate serve` processes it starts then import. Not a test: it prints
numbers and asserts nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio

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
from tests.api.test_edges import _old_broadcasts
from tests.harness import APP, ServerProcess, api_client, start_server_process

MB = 1024 * 1024


def _stop(server: ServerProcess) -> None:
    server.process.kill()
    server.process.wait()
    server.close()


async def bodies(tmp: Path) -> None:
    server = start_server_process(tmp / "bodies.db", "--rate-limit", "0")
    try:
        bystander = await Bystander.connect(server)
        rss = rss_mb(server.process.pid)
        head = request_head("POST", "/v1/push/multiple", {"content-length": "100000000"})
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander.ping_until, done)
            answer = await send_body_until_answered(server, head, total=100_000_000, timeout=120)
            done.set()
        print(
            f"item 2, 100 MB body without a key: HTTP {answer.status} after {answer.seconds:.2f} s,"
            f" {answer.body_bytes_sent / MB:.1f} MB of it sent,"
            f" RSS +{rss_mb(server.process.pid) - rss:.0f} MB,"
            f" worst ping->pong {bystander.worst * 1000:.0f} ms"
        )
        bystander.rtts.clear()
        dense = "[" + ",".join(["[]"] * 20_000) + "]"
        targets = json.dumps([{"target_id": f"d-{i}"} for i in range(10)])
        body = (
            '{"delivery_type": "android", "title": "t", "content": "c",'
            f' "junk": [{",".join([dense] * 250)}], "targets": {targets}}}'
        ).encode()
        peak = peak_rss_mb(server.process.pid)
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bystander.ping_until, done)
            async with api_client(server.api) as client:
                client.timeout = 120
                started = time.perf_counter()
                response = await client.post(
                    "/v1/push/multiple",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                seconds = time.perf_counter() - started
            done.set()
        print(
            f"item 2, 15 MB multiple push of dense JSON: HTTP {response.status_code} in"
            f" {seconds:.2f} s, peak RSS +{peak_rss_mb(server.process.pid) - peak:.0f} MB,"
            f" worst ping->pong {bystander.worst * 1000:.0f} ms"
        )
        bystander.rtts.clear()
        async with api_client(server.api) as client:
            client.timeout = 120
            await client.put("/v1/templates/bomb", json={"title": "#a#" * 21_845, "content": "x"})
            peak = peak_rss_mb(server.process.pid)
            done = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(bystander.ping_until, done)
                started = time.perf_counter()
                response = await client.post(
                    "/v1/push/template",
                    json={
                        "delivery_type": "android",
                        "target_id": "victim",
                        "template": "bomb",
                        "template_kv": {"a": "v" * 10_000},
                    },
                )
                seconds = time.perf_counter() - started
                done.set()
        print(
            f"item 1, template bomb: HTTP {response.status_code} in {seconds:.2f} s,"
            f" peak RSS +{peak_rss_mb(server.process.pid) - peak:.0f} MB,"
            f" worst ping->pong {bystander.worst * 1000:.0f} ms"
        )
        await bystander.aclose()
    finally:
        _stop(server)


async def _timed(what: str, call: object) -> str:
    started = time.perf_counter()
    try:
        with trio.fail_after(15):
            await call()  # type: ignore[operator]
    except (trio.TooSlowError, httpx.HTTPError, OSError, AssertionError) as exc:
        return f"{what} FAILED ({type(exc).__name__})"
    return f"{what} {time.perf_counter() - started:.2f} s"


async def flood(tmp: Path) -> None:
    server = start_limited_server(
        tmp / "flood.db", "--rate-limit", "0", "--max-connections", "600", fd_limit=1024
    )
    held: list[trio.SocketStream] = []
    try:
        host, port = host_port(server.api)
        head = request_head(
            "POST",
            "/v1/push/simple",
            {"authorization": f"Bearer {APP.api_key}", "content-length": "1000"},
        )
        for _ in range(1100):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError:
                continue
            held.append(stream)
            with trio.move_on_after(1):
                try:
                    await stream.send_all(head + b"{")
                except trio.BrokenResourceError:
                    pass

        async def new_device() -> None:
            device = await Bystander.connect(server, "late")
            await device.ping()
            await device.aclose()

        results = [
            await _timed("/healthz", lambda: healthz(server, 15)),
            await _timed("push", lambda: bystander_push(server)),
            await _timed("new device", new_device),
        ]
        print(
            f"item 5, {len(held)} slow API connections under ulimit -n 1024:"
            f" {open_fds(server.process.pid)} descriptors open; " + ", ".join(results)
        )
    finally:
        for stream in held:
            await trio.aclose_forcefully(stream)
        _stop(server)


def purge(tmp: Path) -> None:
    db = tmp / "purge.db"
    _old_broadcasts(db, 30, 20_000)
    server = start_server_process(db, "--rate-limit", "0")

    async def pushes() -> list[float]:
        latencies = []
        with trio.fail_after(300):
            while True:
                latencies.append(await bystander_push(server))
                async with httpx.AsyncClient(base_url=server.api) as client:
                    if "pushgate_messages_purged_total 30.0" in (await client.get("/metrics")).text:
                        return latencies

    try:
        latencies = trio.run(pushes)
    finally:
        _stop(server)
    print(
        f"item 8, purge of 30 broadcasts x 20,000 deliveries: {len(latencies)} pushes meanwhile,"
        f" slowest {max(latencies):.2f} s"
    )


def main() -> None:
    args = sys.argv[1:]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args[:1] == ["--gateway"]:
            # The servers run `python -m gateway.cli` in the current directory:
            # leave this tree's, and put TREE first on their path.
            os.environ["PYTHONPATH"] = str(Path(args[1]).resolve())
            os.chdir(tmp)
            args = args[2:]
        what = args or ["bodies", "flood", "purge"]
        print(f"gateway: {os.environ.get('PYTHONPATH', 'this tree')}")
        if "bodies" in what:
            trio.run(bodies, tmp)
        if "flood" in what:
            trio.run(flood, tmp)
        if "purge" in what:
            purge(tmp)


if __name__ == "__main__":
    main()

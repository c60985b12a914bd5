"""The API's own edges: connection cap and eviction, head and body deadlines (in process,
real sockets; the flood under a descriptor limit is in test_edges.py)."""

from __future__ import annotations

from pathlib import Path

import trio

from gateway.api.http_server import ApiConnections
from tests.api.probes import host_port, request_head
from tests.harness import APP, running_gateway


async def test_at_the_cap_the_longest_waiting_connection_makes_room() -> None:
    conns = ApiConnections(3)
    a, b, c = (conns.admit(("h", port)) for port in (1, 2, 3))
    assert a and b and c and len(conns) == 3
    conns.handling(("h", 1))  # a is in a handler: never closed for a newcomer
    d = conns.admit(("h", 4))
    assert d is not None and b.scope.cancel_called and not a.scope.cancel_called
    assert len(conns) == 3 and conns.evicted == 1
    conns.waiting(("h", 1))  # a waits again, but after c and d started waiting
    e = conns.admit(("h", 5))
    assert e is not None and c.scope.cancel_called and not a.scope.cancel_called
    for peer in (("h", 1), ("h", 4), ("h", 5)):
        conns.handling(peer)
    assert conns.admit(("h", 6)) is None and conns.refused == 1  # all busy: refused


async def _read_all(stream: trio.SocketStream) -> bytes:
    data = bytearray()
    while chunk := await stream.receive_some(65536):
        data.extend(chunk)
    return bytes(data)


async def test_a_body_that_does_not_arrive_in_time_is_a_408(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "gw.db", http_body_timeout=0.5) as gw:
        host, port = host_port(gw.addresses.api)
        stream = await trio.open_tcp_stream(host, port)
        head = {"authorization": f"Bearer {APP.api_key}", "content-length": "100"}
        await stream.send_all(request_head("POST", "/v1/push/simple", head) + b"{")
        with trio.fail_after(10):
            answer = await _read_all(stream)  # the answer, then the close
        await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert b"request_timeout" in answer


async def test_a_head_that_does_not_arrive_in_time_is_dropped(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "gw.db", http_idle_timeout=0.5) as gw:
        host, port = host_port(gw.addresses.api)
        stream = await trio.open_tcp_stream(host, port)
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # no end of head
        with trio.fail_after(10):
            assert await _read_all(stream) == b""
        await stream.aclose()


async def test_a_newcomer_gets_in_when_slow_clients_hold_every_slot(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "gw.db", max_api_connections=3) as gw:
        host, port = host_port(gw.addresses.api)
        slow = []
        for _ in range(3):
            stream = await trio.open_tcp_stream(host, port)
            await stream.send_all(b"GET /healthz HTTP/1.1\r\n")
            slow.append(stream)
        async with gw.http() as client:
            with trio.fail_after(10):
                assert (await client.get("/healthz")).status_code == 200
        with trio.fail_after(10):
            assert await _read_all(slow[0]) == b""  # the longest-waiting one was closed
        for stream in slow:
            await stream.aclose()

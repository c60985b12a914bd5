"""A vendor answering garbage: non-JSON, the wrong content type, a body cut short,
no answer at all. The delivery gets 99999999 with the raw answer (or, for APNs,
the connection codes: see test_apns), never an exception."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trustme

from gateway.channels import SendResult
from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.http1 import Reply
from .standins.raw import RawServer, closed_port

HTTP1_VENDORS = ("fcm", "huawei", "xiaomi", "oppo", "vivo")


@asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[RawServer]:
    server = RawServer(answer)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        yield server
        nursery.cancel_scope.cancel()


async def send_via(vendor: str, endpoint: str, wall: ManualClock, ca: trustme.CA) -> SendResult:
    async with vendor_env(vendor, wall, ca, endpoint=endpoint) as env:
        return await env.send()


@pytest.mark.parametrize("vendor", HTTP1_VENDORS)
async def test_body_cut_short(vendor: str, wall: ManualClock, ca: trustme.CA) -> None:
    cut = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"co'
    async with raw_server(cut) as server:
        result = await send_via(vendor, server.base_url, wall, ca)
        assert server.requests >= 1
    assert (result.code, result.transient) == (99999999, True)
    assert result.raw == "connection: RemoteProtocolError"


@pytest.mark.parametrize("vendor", HTTP1_VENDORS)
async def test_not_http_at_all(vendor: str, wall: ManualClock, ca: trustme.CA) -> None:
    async with raw_server(b"SSH-2.0-OpenSSH_9.6\r\n") as server:
        result = await send_via(vendor, server.base_url, wall, ca)
    assert (result.code, result.transient) == (99999999, True)


@pytest.mark.parametrize("vendor", HTTP1_VENDORS)
async def test_nobody_listening(vendor: str, wall: ManualClock, ca: trustme.CA) -> None:
    result = await send_via(vendor, f"http://127.0.0.1:{closed_port()}", wall, ca)
    assert (result.code, result.transient, result.sent) == (99999999, True, False)


@pytest.mark.parametrize("vendor", HTTP1_VENDORS)
async def test_html_error_page(vendor: str, wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env(vendor, wall, ca) as env:
        env.standin.answers[env.token] = Reply(
            b"<html><body>502 Bad Gateway</body></html>", 502, content_type="text/html"
        )
        result = await env.send()
    assert (result.code, result.transient) == (99999999, True)
    assert result.raw == "HTTP 502 <html><body>502 Bad Gateway</body></html>"


@pytest.mark.parametrize("vendor", HTTP1_VENDORS)
async def test_success_status_with_a_non_json_body(
    vendor: str, wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env(vendor, wall, ca) as env:
        env.standin.answers[env.token] = Reply(b"OK", 200, content_type="text/plain")
        result = await env.send()
    assert (result.code, result.transient, result.raw) == (99999999, False, "HTTP 200 OK")


async def test_huge_answer_is_read_only_up_to_the_bound(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("xiaomi", wall, ca) as env:
        env.standin.answers[env.token] = Reply(b"{" + b" " * 1_000_000 + b"}", 200)
        result = await env.send()
        del env.standin.answers[env.token]
        after = await env.send()  # the abandoned connection is not reused
    assert result.code == 99999999
    assert len(result.raw) <= 1024 and result.raw.endswith("…")
    assert after.code == 2

"""The console's HTTP side without a browser: its files, /v1/console-config, /v1/stats."""

from __future__ import annotations

from typing import Any, cast

import httpx
from starlette.requests import Request

from gateway.api.console import CONSOLE_DIR, console_files, ws_connect_url
from gateway.api.context import ApiContext
from gateway.clock import ManualClock
from gateway.settings import Settings
from protocol import Ack, Push
from tests.harness import OTHER_APP, RunningGateway, push_simple, receive, receive_nothing

DAY_MS = 86_400_000


async def test_console_files_are_served_with_their_types_and_headers(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        index = await client.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "text/html; charset=utf-8"
        assert index.content == (CONSOLE_DIR / "index.html").read_bytes()
        assert "default-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["x-content-type-options"] == "nosniff"
        for path, content_type in [
            ("/index.html", "text/html; charset=utf-8"),
            ("/app.js", "text/javascript; charset=utf-8"),
            ("/style.css", "text/css; charset=utf-8"),
            ("/vendor/msgpack.min.js", "text/javascript; charset=utf-8"),
            ("/vendor/LICENSE", "text/plain; charset=utf-8"),
        ]:
            response = await client.get(path)
            assert (response.status_code, response.headers["content-type"]) == (
                200,
                content_type,
            ), path
        head = await client.head("/app.js")
        assert head.status_code == 200 and head.content == b""

        # Unknown paths, inside /v1 or not, are the API's JSON 404.
        for path in ("/nope.html", "/v1/nope", "/../pyproject.toml", "/vendor/"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"]["code"] == "not_found"


def test_the_console_never_serves_hidden_or_untyped_files(tmp_path: Any) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / ".index.html.swp").write_text("junk")
    (tmp_path / "notes.md").write_text("not served")
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "LICENSE").write_text("ISC")
    assert sorted(console_files(tmp_path)) == ["/", "/index.html", "/vendor/LICENSE"]


async def test_console_config_tells_the_device_websocket_url(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        response = await client.get("/v1/console-config")  # no API key needed
    assert response.status_code == 200
    assert response.json() == {"ws_url": gw.ws_url}


def _request(host: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/console-config",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
            "server": ("10.0.0.5", 8080),
        }
    )


def _context(settings: Settings, ws_url: str | None) -> ApiContext:
    none = cast(Any, None)
    return ApiContext(hub=none, store=none, settings=settings, clock=ManualClock(0), ws_url=ws_url)


def test_a_wildcard_listener_is_reached_through_the_pages_own_host() -> None:
    wildcard = _context(Settings(host="0.0.0.0"), "ws://0.0.0.0:9001")
    assert ws_connect_url(wildcard, _request("push.example:8080")) == (
        "ws://push.example:9001/v1/connect"
    )
    v6 = _context(Settings(host="::"), "ws://[::]:9001")
    assert ws_connect_url(v6, _request("[::1]:8080")) == "ws://[::1]:9001/v1/connect"
    fixed = _context(Settings(host="127.0.0.1"), "ws://127.0.0.1:9001")
    assert ws_connect_url(fixed, _request("localhost:8080")) == "ws://127.0.0.1:9001/v1/connect"
    # Before the server filled in the bound address: the configured port, if any.
    assert ws_connect_url(_context(Settings(ws_port=8081), None), _request("h")) == (
        "ws://127.0.0.1:8081/v1/connect"
    )
    assert ws_connect_url(_context(Settings(ws_port=0), None), _request("h")) is None


async def _stats(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/stats")
    assert response.status_code == 200, response.text
    stats: dict[str, Any] = response.json()
    return stats


async def test_stats_count_devices_online_pushes_today_and_the_acked_share(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client, gw.http(OTHER_APP) as other:
        assert await _stats(client) == {
            "app_id": "app1",
            "devices_online": 0,
            "pushes_today": 0,
            "acked_share": None,
        }
        conn, _ = await gw.connect("stats-dev")
        first = await push_simple(client, "stats-dev")
        await push_simple(client, "stats-other-dev")
        await push_simple(client, "stats-user", delivery_type="user")
        frame = await receive(conn)
        assert isinstance(frame, Push) and frame.id == first["message_id"]
        await conn.send_frame(Ack(ids=(frame.id,)))
        await receive_nothing(conn)  # the ack was handled: the store reads below follow it
        assert await _stats(client) == {
            "app_id": "app1",
            "devices_online": 1,
            "pushes_today": 3,
            "acked_share": round(1 / 3, 4),
        }
        # A broadcast is a push of the day, but has no single status to share.
        broadcast = await client.post("/v1/push/broadcast", json={"title": "b", "content": "c"})
        assert broadcast.status_code == 200, broadcast.text
        stats = await _stats(client)
        assert (stats["pushes_today"], stats["acked_share"]) == (4, round(1 / 3, 4))

        # Apps never see each other's numbers.
        assert await _stats(other) == {
            "app_id": "app2",
            "devices_online": 0,
            "pushes_today": 0,
            "acked_share": None,
        }

        # A new UTC day starts from zero.
        clock.set(clock.now_ms() - clock.now_ms() % DAY_MS + DAY_MS)
        stats = await _stats(client)
        assert (stats["pushes_today"], stats["acked_share"]) == (0, None)
        await conn.aclose()


async def test_stats_need_the_api_key(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        response = await client.get("/v1/stats")
        wrong = await client.get("/v1/stats", headers={"authorization": "Bearer wrong"})
    assert response.status_code == 401 and wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"

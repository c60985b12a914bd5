"""Issue 9 item 14: the contract's smaller points, each where the contract says it.

A hello without a token is `auth_failed` (against a real `pushgate serve`);
retention is exact (a message past 30 days is gone for the duplicate check as
for every read, swept or not); `modified_at` is the time of a status change,
so a revocation, which changes no status, leaves it alone. The last two need
a clock that can pass 30 days: an in-process gateway on a ManualClock, over
real sockets and a real database file.
"""

from __future__ import annotations

from pathlib import Path

import msgpack
import trio

from client_sim.connection import open_device_connection
from client_sim.errors import ConnectionClosed
from gateway.clock import ManualClock
from gateway.store import RETENTION_MS
from protocol import Error
from tests.harness import (
    APP,
    RunningGateway,
    ServerProcess,
    message_details,
    push_simple,
    start_server_process,
)

from .common import assert_clean_log


async def test_a_hello_without_a_token_is_auth_failed(
    tmp_path: Path, server_processes: list[ServerProcess]
) -> None:
    server = start_server_process(tmp_path / "token.db")
    server_processes.append(server)
    for url in (server.ws_url, server.tcp):
        conn = await open_device_connection(url)
        hello = {"t": "hello", "v": 1, "app": APP.app_id, "device": "d", "platform": "ios"}
        await conn.send_raw(msgpack.packb(hello))
        with trio.fail_after(5):
            error = await conn.receive_frame()
            assert isinstance(error, Error) and error.code == "auth_failed", error
            try:
                frame = await conn.receive_frame()
                raise AssertionError(f"not closed: {frame!r}")
            except ConnectionClosed:
                pass
        await conn.aclose()
    assert server.terminate() == 0
    assert_clean_log(server)


async def test_a_message_past_30_days_is_no_duplicate_even_unswept(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        old = await push_simple(client, "dev-r", msg_key="order-1", title="same")
        clock.advance(RETENTION_MS)
        kept = await push_simple(client, "dev-r", msg_key="order-1", title="same")
        assert (kept["message_id"], kept.get("duplicate")) == (old["message_id"], True)
        clock.advance(1)  # 30 days + 1 ms: past the window, and no sweep ran
        new = await push_simple(client, "dev-r", msg_key="order-1", title="same")
        assert new["message_id"] != old["message_id"] and not new.get("duplicate")
        assert (await client.get(f"/v1/messages/{old['message_id']}")).status_code == 404
        details = await message_details(client, new["message_id"])
        assert (details["msg_key"], details["status"]) == ("order-1", 0)


async def test_revoking_changes_no_status_so_no_modification_time(
    gw: RunningGateway, clock: ManualClock
) -> None:
    async with gw.http() as client:
        answer = await push_simple(client, "dev-m", title="to revoke")
        before = await message_details(client, answer["message_id"])
        clock.advance(60_000)
        response = await client.delete(f"/v1/messages/{answer['message_id']}")
        assert response.status_code == 200, response.text
        after = await message_details(client, answer["message_id"])
    assert after["revoked"] is True
    assert (after["status"], after["modified_at"]) == (before["status"], before["modified_at"])

"""A backlog larger than the outbox limit must still be delivered, not starve the device."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from protocol import Bind, Bound, Push, bind_signature
from tests.harness import APP, push_simple, receive, running_gateway

OUTBOX = 20


@pytest.mark.parametrize("transport", ["ws", "tcp"])
async def test_backlog_over_the_outbox_limit_is_delivered(tmp_path: Path, transport: str) -> None:
    async with running_gateway(tmp_path / "backlog.db", outbox_limit=OUTBOX) as gw:
        async with gw.http() as client:
            ids = [
                (await push_simple(client, "dev-big", title=f"m{i}"))["message_id"]
                for i in range(OUTBOX * 3)
            ]
        conn, _ = await gw.connect("dev-big", transport=transport)
        got: list[str] = []
        with trio.fail_after(10):
            while len(got) < len(ids):
                frame = await conn.receive_frame()
                assert isinstance(frame, Push), frame
                got.append(frame.id)
        assert got == ids
        await conn.aclose()


async def test_bind_catch_up_over_the_outbox_limit_is_delivered(tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "bind.db", outbox_limit=OUTBOX) as gw:
        async with gw.http() as client:
            ids = [
                (await push_simple(client, "user-big", delivery_type="user", title=f"u{i}"))[
                    "message_id"
                ]
                for i in range(OUTBOX * 3)
            ]
        conn, _ = await gw.connect("dev-bind")
        sig = bind_signature(APP.secret, APP.app_id, "dev-bind", "user-big")
        await conn.send_frame(Bind(user="user-big", sig=sig))
        assert isinstance(await receive(conn), Bound)
        got: list[str] = []
        with trio.fail_after(10):
            while len(got) < len(ids):
                frame = await conn.receive_frame()
                assert isinstance(frame, Push), frame
                got.append(frame.id)
        assert got == ids
        await conn.aclose()

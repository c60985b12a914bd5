"""Huawei Push Kit: OAuth token, one call per message for up to 1000 tokens,
partial success, flow control, limits."""

from __future__ import annotations

import json

import trio
import trustme

from gateway.channels import ChannelDirectory, VendorDelivery
from gateway.clock import ManualClock

from .envs import APP, vendor_env
from .standins.http1 import Reply
from .standins.huawei import huawei_code


async def test_one_call_carries_every_token_of_a_message(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        message, other = env.message(), env.message(message_id="another")
        batch = [VendorDelivery(message, f"tok-{n}") for n in range(3)]
        batch.append(VendorDelivery(other, "tok-9"))
        with trio.fail_after(30):
            results = await env.channel.send(batch)
        calls = env.standin.calls
    assert [r.code for r in results] == [2, 2, 2, 2]
    assert [c["token"] for c in calls] == [["tok-0", "tok-1", "tok-2"], ["tok-9"]]
    first = calls[0]
    assert json.loads(first["data"]) == {
        "id": message.message_id,
        "msg_key": "order-42",
        "ext": {"order": "42"},
    }
    assert first["android"]["ttl"] == "86400s"
    assert first["android"]["notification"]["title"] == "Hello"


async def test_partial_success_marks_only_the_illegal_tokens(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        env.standin.illegal_tokens.add("tok-1")
        batch = [VendorDelivery(env.message(), f"tok-{n}") for n in range(3)]
        results = await env.channel.send(batch)
    assert [(r.code, r.dead_token) for r in results] == [
        (2, False),
        (80100000, True),
        (2, False),
    ]


async def test_directory_splits_deliveries_into_calls_of_1000(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        async with ChannelDirectory(wall, env.options) as directory:
            await directory.configure(APP, env.credentials)
            message = env.message()
            deliveries = [VendorDelivery(message, f"tok-{n}") for n in range(1500)]
            with trio.fail_after(30):
                results = await directory.send(APP, "huawei", deliveries)
        assert sorted(len(c["token"]) for c in env.standin.calls) == [500, 1000]
    assert len(results) == 1500 and {r.code for r in results} == {2}


async def test_expired_access_token_is_renewed(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        await env.send()
        env.standin.revoked.add("hw-standin-0")  # Huawei answers 80200003
        result = await env.send()
        wall.advance(56 * 60_000)  # 3600 s token, renewed 5 minutes early
        await env.send()
        assert env.standin.issued == ["hw-standin-0", "hw-standin-1", "hw-standin-2"]
    assert result.code == 2


async def test_flow_control_is_transient(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        env.standin.answers[env.token] = Reply(
            {"code": "80000005", "msg": "busy"}, 503, {"Retry-After": "30"}
        )
        busy = await env.send()
        env.standin.answers[env.token] = huawei_code(80000004)
        uninstalled = await env.send()
        env.standin.answers[env.token] = huawei_code(80200001)  # no row in the table
        unknown = await env.send()
    assert (busy.code, busy.transient, busy.retry_after) == (80000005, True, 30.0)
    assert (uninstalled.code, uninstalled.dead_token) == (80000004, True)
    assert unknown.code == 99999999 and "80200001" in unknown.raw


async def test_limits_are_checked_before_sending(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        too_big = await env.send(content="x" * 4096)
        expired = await env.send(expires_ms=wall.now_ms())
        assert env.standin.requests == []
    assert (too_big.code, too_big.sent) == (80300008, False)
    assert (expired.code, expired.sent) == (80100004, False)


async def test_refused_client_credentials(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("huawei", wall, ca) as env:
        env.standin.auth_answer = Reply({"error": 1101, "error_description": "invalid client"}, 400)
        result = await env.send()
    assert (result.code, result.transient) == (99999999, False)
    assert "invalid client" in result.raw

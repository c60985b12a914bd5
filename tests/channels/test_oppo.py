"""OPPO Push: the signed auth, the 24 h token, unicast and unicast_batch."""

from __future__ import annotations

import json

import trustme

from gateway.channels import VendorDelivery
from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.oppo import AUTH_PATH, BATCH_PATH, UNICAST_PATH, oppo_code

HOUR = 3_600_000


async def test_unicast_message_shape(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        result = await env.send(expires_ms=wall.now_ms() + HOUR)
        (message,) = env.standin.messages
        assert env.standin.count(UNICAST_PATH) == 1
    assert result.code == 2
    assert (message["target_type"], message["target_value"]) == (2, env.token)
    notification = message["notification"]
    assert (notification["title"], notification["content"]) == ("Hello", "Your order shipped")
    assert notification["off_line_ttl"] == 3600
    assert json.loads(notification["action_parameters"])["id"] == "01m84wdkegvrjfkmcg62vm8tbv"


async def test_auth_token_lives_a_day_and_is_renewed_an_hour_early(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        await env.send()
        wall.advance(22 * HOUR)
        await env.send()
        assert env.standin.count(AUTH_PATH) == 1
        wall.advance(HOUR + 1)
        await env.send()
        assert env.standin.count(AUTH_PATH) == 2


async def test_invalid_auth_token_is_renewed_once(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        await env.send()
        env.standin.revoked.add("oppo-standin-0")
        result = await env.send()
        assert env.standin.issued == ["oppo-standin-0", "oppo-standin-1"]
    assert result.code == 2


async def test_batch_answers_per_message(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        env.standin.answers["bad"] = oppo_code(10000, "registration_id格式不正确")
        batch = [VendorDelivery(env.message(), t) for t in ("good-1", "bad", "good-2")]
        results = await env.channel.send(batch)
        assert env.standin.count(BATCH_PATH) == 1
    assert [(r.code, r.dead_token) for r in results] == [(2, False), (10000, True), (2, False)]


async def test_flow_control_and_bad_signature(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        env.standin.answers[env.token] = oppo_code(-2, "Service in Flow Control")
        flow = await env.send()
    async with vendor_env("oppo", wall, ca) as env:
        env.standin.auth_answer = oppo_code(16, "Invalid Signature")
        batch = [VendorDelivery(env.message(), t) for t in ("a", "b")]
        signature = await env.channel.send(batch)
    assert (flow.code, flow.transient) == (-2, True)
    assert [(r.code, r.transient, r.dead_token) for r in signature] == [(16, False, False)] * 2


async def test_limits_are_checked_before_sending(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("oppo", wall, ca) as env:
        title = await env.send(title="t" * 51)
        params = await env.send(ext={"k": "v" * 4000})
        assert env.standin.requests == []
    assert (title.code, title.sent) == (99999999, False)
    assert "title over 50" in title.raw and "4000" in params.raw

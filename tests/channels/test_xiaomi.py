"""MiPush: the form a send posts, limits, and which codes are dead or transient."""

from __future__ import annotations

import json

import trustme

from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.xiaomi import mi_code


async def test_form_fields(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("xiaomi", wall, ca) as env:
        result = await env.send(expires_ms=wall.now_ms() + 7_200_000)
        (form,) = env.standin.forms
    assert result.code == 2
    assert form["registration_id"] == env.token
    assert (form["title"], form["description"]) == ("Hello", "Your order shipped")
    assert form["restricted_package_name"] == "com.example.app"
    assert form["time_to_live"] == "7200000"  # milliseconds
    assert form["extra.id"] == "01m84wdkegvrjfkmcg62vm8tbv"
    assert json.loads(form["payload"])["ext"] == {"order": "42"}


async def test_ttl_is_capped_at_two_weeks(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("xiaomi", wall, ca) as env:
        await env.send(expires_ms=wall.now_ms() + 30 * 86_400_000)
        assert env.standin.forms[0]["time_to_live"] == str(14 * 86_400_000)


async def test_codes_dead_and_transient(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("xiaomi", wall, ca) as env:
        outcomes = {}
        for code in (20301, 10027, 22022, 66666):
            env.standin.answers[env.token] = mi_code(code)
            outcomes[code] = await env.send()
    assert (outcomes[20301].code, outcomes[20301].dead_token) == (20301, True)
    assert (outcomes[10027].code, outcomes[10027].transient) == (10027, True)
    assert (outcomes[22022].dead_token, outcomes[22022].transient) == (False, False)
    assert outcomes[66666].code == 99999999 and "66666" in outcomes[66666].raw


async def test_limits_are_checked_before_sending(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("xiaomi", wall, ca) as env:
        title = await env.send(title="t" * 51)
        content = await env.send(content="c" * 129)
        expired = await env.send(expires_ms=wall.now_ms())
        assert env.standin.requests == []
    assert (title.code, content.code, expired.code) == (10018, 10018, 10017)
    assert not title.sent

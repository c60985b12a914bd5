"""vivo Push: the signed auth, the authToken header, vivo's limits and codes."""

from __future__ import annotations

import trustme

from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.vivo import AUTH_PATH, vivo_code


async def test_send_shape(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("vivo", wall, ca) as env:
        result = await env.send(expires_ms=wall.now_ms() + 600_000)
        await env.send(token="16104523101259999999999")
        first, second = env.standin.sent
    assert result.code == 2 and "t1" in result.raw
    assert (first["regId"], first["title"], first["timeToLive"]) == (env.token, "Hello", 600)
    assert first["clientCustomMap"]["id"] == "01m84wdkegvrjfkmcg62vm8tbv"
    assert first["requestId"] != second["requestId"]  # one per (message, device)
    assert first["requestId"].startswith("01m84wdkegvrjfkmcg62vm8tbv-")


async def test_token_renewed_hourly_and_after_a_refusal(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("vivo", wall, ca) as env:
        await env.send()
        wall.advance(59 * 60_000)
        await env.send()
        assert env.standin.count(AUTH_PATH) == 1
        wall.advance(60_000)
        await env.send()
        env.standin.revoked.add("vivo-standin-1")
        result = await env.send()
        assert env.standin.count(AUTH_PATH) == 3
    assert result.code == 2


async def test_invalid_regid_is_dead(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("vivo", wall, ca) as env:
        env.standin.answers[env.token] = vivo_code(10302, "regId不合法", invalidUser={"status": 2})
        invalid = await env.send()
        env.standin.answers[env.token] = vivo_code(10072, "too fast")
        fast = await env.send()
    assert (invalid.code, invalid.dead_token) == (10302, True)
    assert "invalidUser" in invalid.raw
    assert (fast.code, fast.transient) == (10072, True)


async def test_limits_are_checked_before_sending(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("vivo", wall, ca) as env:
        results = [
            await env.send(title=""),
            await env.send(title="t" * 41),
            await env.send(content="c" * 101),
            await env.send(ext={"k": "v" * 1000}),
            await env.send(expires_ms=wall.now_ms() + 59_000),
        ]
        assert env.standin.requests == []
    assert [r.code for r in results] == [10055, 10056, 10058, 10067, 99999999]
    assert not any(r.sent for r in results)

"""FCM HTTP v1: the service-account token flow, TTL from the expiry, limits,
and how its errors map."""

from __future__ import annotations

import json

import trustme

from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.fcm import fcm_error
from .standins.http1 import Reply

MINUTE = 60_000


async def test_message_shape_and_ttl_from_expiry(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        result = await env.send(expires_ms=wall.now_ms() + 3_600_000)
        (message,) = env.standin.messages
    assert result.code == 2 and result.raw.startswith("projects/pushgate-test/messages/")
    assert message["token"] == env.token
    assert message["notification"] == {"title": "Hello", "body": "Your order shipped"}
    assert message["android"]["ttl"] == "3600s"
    data = message["data"]
    assert data["id"] == "01m84wdkegvrjfkmcg62vm8tbv" and data["msg_key"] == "order-42"
    assert json.loads(data["ext"]) == {"order": "42"}


async def test_ttl_longer_than_fcm_keeps_is_capped_at_28_days(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        await env.send(expires_ms=wall.now_ms() + 30 * 86_400_000)
        assert env.standin.messages[0]["android"]["ttl"] == "2419200s"


async def test_access_token_is_cached_then_renewed_before_expiry(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        await env.send()
        wall.advance(54 * MINUTE)  # token (3600 s) still good for 6 minutes
        await env.send()
        assert env.standin.count("/token") == 1
        wall.advance(2 * MINUTE)  # within 5 minutes of expiry: renewed
        await env.send()
        assert env.standin.count("/token") == 2
        bearers = [h["authorization"] for p, h in env.standin.requests if p != "/token"]
    assert bearers == ["Bearer ya29.standin-0"] * 2 + ["Bearer ya29.standin-1"]


async def test_a_revoked_access_token_is_replaced_once(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        await env.send()
        env.standin.revoked.add("ya29.standin-0")
        renewed = await env.send()
        env.standin.revoked.add("ya29.standin-1")
        env.standin.revoked.add("ya29.standin-2")
        refused = await env.send()
        assert env.standin.count("/token") == 3  # one renewal per send, never a loop
    assert renewed.code == 2
    assert (refused.code, refused.transient) == (90000401, False)


async def test_refused_assertion_is_authentication(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        env.standin.auth_answer = Reply({"error": "invalid_grant", "error_description": "x"}, 400)
        result = await env.send()
    assert (result.code, result.sent) == (90000401, True)
    assert "invalid_grant" in result.raw


async def test_unregistered_and_invalid_tokens_are_dead(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        env.standin.answers[env.token] = fcm_error(404, "UNREGISTERED", "gone")
        gone = await env.send()
        env.standin.answers[env.token] = fcm_error(
            400, "INVALID_ARGUMENT", "not a valid FCM registration token", "message.token"
        )
        invalid = await env.send()
        env.standin.answers[env.token] = fcm_error(403, "SENDER_ID_MISMATCH", "other sender")
        mismatch = await env.send()
    assert (gone.code, gone.dead_token) == (90000003, True)
    assert (invalid.code, invalid.dead_token) == (90000002, True)
    assert (mismatch.code, mismatch.dead_token) == (99999999, False)


async def test_unavailable_and_quota_are_transient(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        reply = fcm_error(503, "UNAVAILABLE", "later")
        reply.headers["Retry-After"] = "12"
        env.standin.answers[env.token] = reply
        unavailable = await env.send()
        env.standin.answers[env.token] = fcm_error(500, "INTERNAL", "oops")
        internal = await env.send()
        env.standin.answers[env.token] = fcm_error(429, "QUOTA_EXCEEDED", "slow down")
        quota = await env.send()
    assert (unavailable.code, unavailable.transient, unavailable.retry_after) == (
        90000011,
        True,
        12.0,
    )
    assert (internal.code, internal.transient) == (90000011, True)
    assert (quota.code, quota.transient) == (99999999, True)


async def test_too_big_and_expired_are_caught_before_sending(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("fcm", wall, ca) as env:
        too_big = await env.send(ext={"blob": "x" * 4000})
        expired = await env.send(expires_ms=wall.now_ms() - 1)
        assert env.standin.requests == []  # not even a token fetch
    assert (too_big.code, too_big.sent) == (90000007, False)
    assert (expired.code, expired.sent) == (90000009, False)

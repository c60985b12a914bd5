"""APNs: request shape, the provider token's age, one multiplexed connection,
what each kind of failure becomes."""

from __future__ import annotations

import json

import trio
import trustme

from gateway.channels import VendorDelivery
from gateway.channels.apns import collapse_id
from gateway.clock import ManualClock

from .envs import vendor_env
from .standins.apns import ApnsReply

MINUTE = 60_000


async def test_request_carries_every_documented_header(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("apns", wall, ca) as env:
        result = await env.send()
        (request,) = env.standin.requests
    assert result.code == 2 and result.sent and not result.dead_token
    message = env.message()
    headers = request.headers
    assert headers["apns-topic"] == "com.example.app"
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-expiration"] == str(message.expires_ms // 1000)
    assert headers["apns-collapse-id"] == "order-42"
    assert request.device_token == env.token
    assert request.body["aps"]["alert"] == {"title": "Hello", "body": "Your order shipped"}
    assert (request.body["id"], request.body["msg_key"]) == (message.message_id, "order-42")
    assert request.body["ext"] == {"order": "42"}
    assert f"apns-id={headers['apns-id']}" in result.raw


async def test_apns_id_is_stable_per_delivery_and_distinct_per_device(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        await env.send()
        await env.send()
        await env.send(token="ff" * 32)
        ids = [r.headers["apns-id"] for r in env.standin.requests]
    assert ids[0] == ids[1] != ids[2]


def test_long_msg_key_collapses_to_its_digest() -> None:
    assert collapse_id("k" * 64) == "k" * 64
    assert len(collapse_id("k" * 65)) == 64 != collapse_id("j" * 65)


async def test_provider_token_is_reused_under_20_minutes_and_renewed_before_60(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        await env.send()
        wall.advance(19 * MINUTE)
        await env.send()
        wall.advance(31 * MINUTE)  # 50 minutes old: renewed
        await env.send()
        wall.advance(49 * MINUTE)
        await env.send()
        tokens = env.standin.provider_tokens()
    assert tokens[0] == tokens[1] != tokens[2] == tokens[3]
    assert env.channel.tokens_issued == 2  # type: ignore[attr-defined]


async def test_expired_provider_token_is_renewed_and_the_push_sent_again(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        await env.send()
        wall.advance(21 * MINUTE)
        # Apple's clock is 40 minutes ahead of ours: it sees a 61-minute-old token.
        env.standin.clock = ManualClock(wall.now_ms() + 40 * MINUTE)
        result = await env.send()
        tokens = env.standin.provider_tokens()
    assert result.code == 2
    assert len(tokens) == 3 and tokens[1] == tokens[0] != tokens[2]


async def test_expired_provider_token_is_not_renewed_within_20_minutes(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        env.standin.clock = ManualClock(wall.now_ms() + 61 * MINUTE)
        result = await env.send()
        assert len(env.standin.requests) == 1  # no second attempt, no new token
    assert result.code == 99999999 and "ExpiredProviderToken" in result.raw


async def test_concurrent_pushes_share_one_http2_connection(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        await env.send()  # the connection exists
        env.standin.hold_until_streams = 5  # answers only once 5 streams are open at once
        results: list[int] = []

        async def one(n: int) -> None:
            delivery = VendorDelivery(env.message(message_id=f"m{n}"), env.token)
            (result,) = await env.channel.send([delivery])
            results.append(result.code)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for n in range(5):
                    nursery.start_soon(one, n)
        assert results == [2] * 5
        assert env.standin.connections == 1


async def test_reset_truncated_stream_and_dropped_connection_are_conn_closed(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        env.standin.answers[env.token] = ApnsReply(action="reset")
        reset = await env.send()
        env.standin.answers[env.token] = ApnsReply(action="truncate")
        truncated = await env.send()
        env.standin.answers[env.token] = ApnsReply(action="drop")
        dropped = await env.send()
        del env.standin.answers[env.token]
        after = await env.send()  # a new connection replaces the dropped one
        assert env.standin.connections == 2
    for result in (reset, truncated, dropped):
        assert (result.code, result.transient) == (2024, True)
    assert after.code == 2


async def test_unregistered_token_is_dead(wall: ManualClock, ca: trustme.CA) -> None:
    async with vendor_env("apns", wall, ca) as env:
        env.standin.answers[env.token] = ApnsReply(
            410, body=json.dumps({"reason": "Unregistered", "timestamp": 1}).encode()
        )
        gone = await env.send()
        env.standin.answers[env.token] = ApnsReply(400, "BadDeviceToken")
        bad = await env.send()
    assert (gone.code, gone.dead_token, gone.transient) == (2011, True, False)
    assert (bad.code, bad.dead_token) == (2009, False)  # can be the wrong environment


async def test_throttling_and_outages_are_transient_with_retry_after(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        outcomes = []
        for status, reason in (
            (429, "TooManyRequests"),
            (500, "InternalServerError"),
            (503, "ServiceUnavailable"),
        ):
            env.standin.answers[env.token] = ApnsReply(status, reason, {"retry-after": "7"})
            outcomes.append(await env.send())
    for result in outcomes:
        assert (result.code, result.transient, result.retry_after) == (99999999, True, 7.0)


async def test_garbage_answers_are_none_with_the_raw_answer(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        env.standin.answers[env.token] = ApnsReply(400, body=b"<html>bad gateway</html>")
        html = await env.send()
        env.standin.answers[env.token] = ApnsReply(400, body=b'{"reason": ')
        cut = await env.send()
        env.standin.answers[env.token] = ApnsReply(400, "SomethingNew")
        unknown = await env.send()
    assert (html.code, html.raw) == (99999999, "HTTP 400 <html>bad gateway</html>")
    assert (cut.code, cut.raw) == (99999999, 'HTTP 400 {"reason":')
    assert unknown.code == 99999999 and "SomethingNew" in unknown.raw


async def test_documented_limits_are_checked_before_sending(
    wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env("apns", wall, ca) as env:
        too_big = await env.send(content="x" * 4096)
        not_hex = await env.send(token="not-a-hex-token")
        expired = await env.send(expires_ms=wall.now_ms())
        assert env.standin.requests == []
    assert (too_big.code, too_big.sent) == (2002, False)
    assert "4096" in too_big.raw
    assert (not_hex.code, expired.code) == (2009, 2006)

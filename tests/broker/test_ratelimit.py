"""The per-app token bucket in Redis is shared by every node."""

from __future__ import annotations

import math

import trio

from gateway.broker import BrokerConfig

from .support import running_broker


async def test_two_nodes_share_one_bucket_per_app(config: BrokerConfig) -> None:
    # One token per 100 s: no token comes back while the test runs, however slow.
    rate, burst = 0.01, 3
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a, running_broker(config, "node-b") as b:
            assert await a.take_token("app1", rate, burst) == 0.0
            assert await b.take_token("app1", rate, burst) == 0.0
            assert await a.take_token("app1", rate, burst) == 0.0
            wait = await b.take_token("app1", rate, burst)  # the bucket is empty for both
            assert 0 < wait <= 100.0
            assert math.ceil(wait) > 90  # Retry-After: nearly a whole token's time
            assert await a.take_token("app1", rate, burst) > 0

            assert await a.take_token("app2", rate, burst) == 0.0  # other apps: own buckets
            assert await b.take_token("app:1", rate, burst) == 0.0


async def test_tokens_come_back_at_the_rate(config: BrokerConfig) -> None:
    rate, burst = 20.0, 1  # one token per 50 ms
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a, running_broker(config, "node-b") as b:
            assert await a.take_token("app1", rate, burst) == 0.0
            wait = await b.take_token("app1", rate, burst)
            if wait > 0:  # (a slow machine may already have refilled it)
                assert wait <= 0.05
                await trio.sleep(wait)
            while await b.take_token("app1", rate, burst) > 0:
                await trio.sleep(0.01)


async def test_no_limit_needs_no_redis(config: BrokerConfig) -> None:
    with trio.fail_after(20):
        async with running_broker(config, "node-a") as a:
            assert await a.take_token("app1", 0, 1) == 0.0

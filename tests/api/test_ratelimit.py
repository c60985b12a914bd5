"""Per-app rate limits on /v1: token buckets, 429 with Retry-After, apps isolated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.api.ratelimit import RateLimiter, retry_after_header
from gateway.settings import Settings
from tests.harness import OTHER_APP, RunningGateway, api_client, running_gateway


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    # 0.2 calls/s: a token takes 5 s to come back, so the test never races the refill.
    async with running_gateway(tmp_path / "limited.db", rate_limit=0.2, rate_burst=3) as gw:
        yield gw


async def test_over_the_limit_is_429_with_retry_after(limited: RunningGateway) -> None:
    async with limited.http() as client:
        for _ in range(3):
            assert (await client.get("/v1/messages")).status_code == 200
        response = await client.get("/v1/messages")
        assert response.status_code == 429
        error = response.json()["error"]
        assert error["code"] == "rate_limited" and error["message"]
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 5
        # Every /v1 call draws on the same bucket.
        push = await client.post(
            "/v1/push/simple",
            json={"delivery_type": "ios", "target_id": "d", "title": "t", "content": "c"},
        )
        assert push.status_code == 429


async def test_one_apps_flood_leaves_another_app_alone(limited: RunningGateway) -> None:
    async with limited.http() as client:
        statuses = [(await client.get("/v1/status-codes")).status_code for _ in range(10)]
    assert statuses == [200] * 3 + [429] * 7
    async with limited.http(OTHER_APP) as other:
        assert [(await other.get("/v1/messages")).status_code for _ in range(3)] == [200] * 3
        assert (await other.get("/v1/messages")).status_code == 429


async def test_health_metrics_and_bad_keys_are_not_limited(limited: RunningGateway) -> None:
    async with api_client(limited.addresses.api) as client:
        for _ in range(5):
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200
            wrong = await client.get("/v1/messages", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401
        assert [(await client.get("/v1/messages")).status_code for _ in range(4)] == [
            200,
            200,
            200,
            429,
        ]
        metrics = (await client.get("/metrics")).text
    assert "pushgate_api_rate_limited_total 1.0" in metrics


async def test_zero_rate_turns_the_limit_off(tmp_path: Path) -> None:
    async with (
        running_gateway(tmp_path / "free.db", rate_limit=0, rate_burst=1) as gw,
        gw.http() as client,
    ):
        for _ in range(20):
            assert (await client.get("/v1/messages")).status_code == 200


def test_defaults_are_generous() -> None:
    settings = Settings()
    assert (settings.rate_limit, settings.rate_burst) == (2000.0, 4000)


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [100.0]
    limiter = RateLimiter(2.0, 4, now=lambda: now[0])
    assert [limiter.take("a") for _ in range(4)] == [0.0] * 4
    assert limiter.take("a") == pytest.approx(0.5)  # half a second for the next token
    assert limiter.take("b") == 0.0  # another key has its own bucket
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] += 3600  # a long pause refills to the burst, not beyond
    assert [limiter.take("a") for _ in range(5)][-1] > 0


@pytest.mark.parametrize(
    ("wait", "header"), [(0.001, "1"), (0.5, "1"), (1.0, "1"), (1.01, "2"), (7.2, "8")]
)
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header

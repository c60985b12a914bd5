"""`GET /metrics`: Prometheus text, per gateway, and the counters move with traffic."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.clock import ManualClock
from gateway.ids import new_id
from gateway.metrics import Metrics, created_ms_of
from protocol import Ack, Push
from tests.harness import (
    RunningGateway,
    api_client,
    push_simple,
    receive,
    running_gateway,
    wait_until,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(gw: RunningGateway) -> Samples:
    async with api_client(gw.addresses.api) as client:
        del client.headers["authorization"]  # no key needed, like /healthz
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def wait_for(gw: RunningGateway, name: str, target: float, **labels: str) -> Samples:
    async def reached() -> Samples | None:
        samples = await scrape(gw)
        return samples if value(samples, name, **labels) >= target else None

    return await wait_until(reached, f"{name}{labels or ''} >= {target}")


def test_message_ids_carry_their_creation_time() -> None:
    assert created_ms_of(new_id(1_795_000_000_123)) == 1_795_000_000_123
    assert created_ms_of("not-an-id") is None
    assert created_ms_of("!" * 26) is None


async def test_metrics_parse_and_move_with_a_push_and_its_ack(
    gw: RunningGateway, clock: ManualClock
) -> None:
    before = await scrape(gw)
    assert value(before, "pushgate_connections_online") == 0
    assert value(before, "pushgate_pushes_accepted_total", push_type="simple") == 0
    assert value(before, "pushgate_acks_total") == 0
    assert ("pushgate_ack_latency_seconds_count", ()) in before

    conn, _ = await gw.connect("dev-metrics")
    assert value(await scrape(gw), "pushgate_connections_online") == 1
    async with gw.http() as client:
        answer = await push_simple(client, "dev-metrics")
        again = await push_simple(client, "dev-metrics", msg_key=str(answer["msg_key"]))
        assert again.get("duplicate") is True  # not counted twice
    frame = await receive(conn)
    assert isinstance(frame, Push)
    clock.advance(1500)
    await conn.send_frame(Ack(ids=(frame.id,)))
    after = await wait_for(gw, "pushgate_acks_total", 1)
    assert value(after, "pushgate_pushes_accepted_total", push_type="simple") == 1
    assert value(after, "pushgate_deliveries_sent_total") >= 1
    assert value(after, "pushgate_ack_latency_seconds_count") == 1
    assert value(after, "pushgate_ack_latency_seconds_sum") == 1.5
    assert value(after, "pushgate_ack_latency_seconds_bucket", le="2.5") == 1
    assert value(after, "pushgate_ack_latency_seconds_bucket", le="1.0") == 0
    assert value(after, "pushgate_store_batch_size_count") >= 3
    assert value(after, "pushgate_store_commit_seconds_count") >= 3

    # A repeated ack changes nothing and is not counted.
    await conn.send_frame(Ack(ids=(frame.id,)))
    await conn.aclose()

    async def offline() -> Samples | None:
        samples = await scrape(gw)
        return samples if value(samples, "pushgate_connections_online") == 0 else None

    samples = await wait_until(offline, "no connection online")
    assert value(samples, "pushgate_acks_total") == 1


async def test_each_gateway_has_its_own_registry(gw: RunningGateway, tmp_path: Path) -> None:
    async with running_gateway(tmp_path / "second.db") as second:
        async with second.http() as client:
            await push_simple(client, "d")
        assert (
            value(await scrape(second), "pushgate_pushes_accepted_total", push_type="simple") == 1
        )
    assert value(await scrape(gw), "pushgate_pushes_accepted_total", push_type="simple") == 0


async def test_metrics_need_no_key_even_a_wrong_one(gw: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gw.addresses.api) as client:
        response = await client.get("/metrics", headers={"authorization": "Bearer wrong"})
    assert response.status_code == 200
    assert "pushgate_connections_online" in response.text


def test_plain_counters_export_as_prometheus_families_on_scrape() -> None:
    """Hooks only add to plain numbers; render() turns them into the Prometheus text."""
    clock = ManualClock(1_795_000_010_000)
    metrics = Metrics(clock)
    metrics.watch_online(lambda: 3)
    metrics.pushes_sent(5)
    metrics.rate_limited.inc()
    metrics.purged.inc(30)
    ids = [new_id(1_795_000_010_000 - 2_000), new_id(1_795_000_010_000 - 40)]
    metrics.acked(ids, 2)
    metrics.acked(ids[:1], 0)  # nothing changed: nothing counted
    metrics.store_commit(7, 0.003)
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert value(samples, "pushgate_connections_online") == 3
    assert value(samples, "pushgate_deliveries_sent_total") == 5
    assert value(samples, "pushgate_api_rate_limited_total") == 1
    assert value(samples, "pushgate_messages_purged_total") == 30
    assert value(samples, "pushgate_acks_total") == 2
    # Buckets are cumulative: 0.04 s is in le=0.05 and above, 2 s in le=2.5 and above.
    latency = "pushgate_ack_latency_seconds_bucket"
    assert value(samples, latency, le="0.01") == 0
    assert value(samples, latency, le="0.05") == 1
    assert value(samples, latency, le="1.0") == 1
    assert value(samples, latency, le="2.5") == 2
    assert value(samples, latency, le="+Inf") == 2
    assert value(samples, "pushgate_ack_latency_seconds_sum") == pytest.approx(2.04)
    assert value(samples, "pushgate_store_batch_size_bucket", le="5.0") == 0
    assert value(samples, "pushgate_store_batch_size_bucket", le="10.0") == 1
    assert value(samples, "pushgate_store_commit_seconds_count") == 1

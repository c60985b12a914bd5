"""The delivery oracle on planted records: pure logic, no I/O."""

from __future__ import annotations

import pytest

from client_sim.oracle import AcceptedPush, Arrival, LatencyStats, Oracle, percentile

T0 = 1_795_000_000_000
HOUR = 3_600_000


def accepted(message_id: str, *devices: str, pushed: int = T0, ttl: int = HOUR) -> AcceptedPush:
    return AcceptedPush(
        message_id=message_id,
        expected=frozenset(devices),
        pushed_ms=pushed,
        accepted_ms=pushed + 5,
        expires_ms=pushed + 5 + ttl,
        target=devices[0] if len(devices) == 1 else "*",
    )


def arrival(
    device: str, message_id: str, at: int, *, session: str = "s1", expires: int = T0 + HOUR
) -> Arrival:
    return Arrival(
        device=device, message_id=message_id, received_ms=at, session=session, expires_ms=expires
    )


def clean_oracle() -> Oracle:
    """Three devices online all along; m1 to d1, m2 to d2, a user push to d1+d3."""
    oracle = Oracle()
    for device in ("d1", "d2", "d3"):
        oracle.presence(device, online=True, at_ms=T0 - 1000)
    oracle.accept(accepted("m1", "d1"))
    oracle.accept(accepted("m2", "d2", pushed=T0 + 10))
    oracle.accept(accepted("m3", "d1", "d3", pushed=T0 + 20))
    oracle.arrive(arrival("d1", "m1", T0 + 30))
    oracle.arrive(arrival("d2", "m2", T0 + 50))
    oracle.arrive(arrival("d1", "m3", T0 + 60))
    oracle.arrive(arrival("d3", "m3", T0 + 80))
    oracle.ack("d1", ["m1", "m3"], T0 + 100)
    oracle.ack("d2", ["m2"], T0 + 110)
    return oracle


def test_a_clean_run_passes():
    oracle = clean_oracle()
    assert oracle.outstanding == 0
    assert oracle.delivered == 4
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.ok
    assert verdict.failures == {}
    assert verdict.messages == 3
    assert verdict.expected_deliveries == verdict.delivered == 4
    assert verdict.acked == 3  # d3 never acked m3
    assert (verdict.lost, verdict.late, verdict.misdelivered) == (0, 0, 0)
    assert (verdict.duplicates, verdict.redeliveries, verdict.unknown) == (0, 0, 0)
    assert sorted(verdict.receive_latencies) == [30, 40, 40, 60]
    assert verdict.receive_latency.max == 60
    assert verdict.first_push_ms == T0
    assert verdict.last_delivery_ms == T0 + 80


def test_a_planted_loss_is_caught():
    oracle = clean_oracle()
    oracle.accept(accepted("m4", "d2", pushed=T0 + 200))
    assert oracle.outstanding == 1
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert not verdict.ok
    assert verdict.failures == {"lost": 1}
    assert verdict.lost == verdict.lost_messages == 1
    assert verdict.examples["lost"] == [("m4", "d2")]


def test_each_bound_device_of_a_user_push_counts():
    oracle = clean_oracle()
    oracle.accept(accepted("m5", "d1", "d2", "d3", pushed=T0 + 300))
    oracle.arrive(arrival("d1", "m5", T0 + 310))
    oracle.arrive(arrival("d3", "m5", T0 + 320))
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.lost == 1
    assert verdict.examples["lost"] == [("m5", "d2")]


def test_a_planted_duplicate_on_one_connection_is_caught():
    oracle = clean_oracle()
    oracle.arrive(arrival("d2", "m2", T0 + 70, session="s1"))
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.duplicates == 1
    assert verdict.redeliveries == 0
    assert verdict.examples["duplicate"] == [("m2", "d2")]
    # Duplicates are reported, not a contract failure.
    assert verdict.ok


def test_a_redelivery_after_reconnect_is_counted_apart():
    oracle = clean_oracle()
    oracle.arrive(arrival("d2", "m2", T0 + 900, session="s2"))
    oracle.arrive(arrival("d2", "m2", T0 + 950, session="s3"))
    oracle.arrive(arrival("d2", "m2", T0 + 960, session="s3"))  # s3 again: a duplicate
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.redeliveries == 2
    assert verdict.duplicates == 1
    # The first arrival is the delivery: latency unchanged.
    assert verdict.receive_latency.max == 60


def test_a_planted_late_delivery_is_caught():
    oracle = clean_oracle()
    oracle.accept(accepted("m6", "d2", pushed=T0 + 400, ttl=1000))
    expires = T0 + 400 + 1000
    oracle.arrive(arrival("d2", "m6", expires + 5000, expires=expires))
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.failures == {"late": 1}
    assert verdict.delivered == 5  # delivered, but late
    assert verdict.examples["late"] == [("m6", "d2")]


def test_lateness_allows_for_the_tolerance_and_the_clock_offset():
    oracle = Oracle(late_tolerance_ms=1000)
    oracle.presence("d1", online=True, at_ms=T0)
    oracle.accept(accepted("m1", "d1", ttl=1000))
    expires = T0 + 1005
    # 500 ms past expiry by the device's clock: within the tolerance.
    oracle.arrive(arrival("d1", "m1", expires + 500, expires=expires))
    assert oracle.verdict(end_ms=T0 + 10_000).late == 0
    # The device's clock is 3 s behind the gateway's: really 2.5 s late.
    oracle.arrive(
        Arrival(
            device="d1",
            message_id="m1",
            received_ms=expires - 500,
            session="s2",
            expires_ms=expires,
            clock_offset_ms=3000,
        )
    )
    assert oracle.verdict(end_ms=T0 + 10_000).late == 1


def test_a_planted_misdelivery_is_caught():
    oracle = clean_oracle()
    oracle.arrive(arrival("d3", "m1", T0 + 90))
    oracle.arrive(arrival("d3", "m1", T0 + 95, session="s9"))  # counted once per device
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.failures == {"misdelivered": 1}
    assert verdict.examples["misdelivered"] == [("m1", "d3")]


def test_ids_never_accepted_are_unknown_not_failures():
    oracle = clean_oracle()
    oracle.arrive(arrival("d1", "left-over-from-another-run", T0 + 5))
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.unknown == 1
    assert verdict.ok


def test_arrivals_before_the_answer_are_matched_later():
    oracle = Oracle()
    oracle.presence("d1", online=True, at_ms=T0)
    oracle.arrive(arrival("d1", "m1", T0 + 3))  # before the HTTP answer came back
    oracle.ack("d1", ["m1"], T0 + 4)
    assert oracle.outstanding == 0
    oracle.accept(accepted("m1", "d1"))
    assert (oracle.outstanding, oracle.delivered, oracle.acked) == (0, 1, 1)
    verdict = oracle.verdict(end_ms=T0 + 100)
    assert verdict.ok and verdict.delivered == 1 and verdict.ack_latency.max == 4


def test_the_same_message_accepted_twice_counts_once():
    oracle = clean_oracle()
    oracle.accept(accepted("m1", "d1"))  # a retried request answered "duplicate"
    verdict = oracle.verdict(end_ms=T0 + 10_000)
    assert verdict.messages == 3 and verdict.expected_deliveries == 4


def test_a_device_offline_for_the_whole_window_is_unreachable_not_lost():
    oracle = Oracle(grace_ms=2000)
    oracle.presence("d1", online=True, at_ms=T0 - 10_000)
    oracle.presence("d1", online=False, at_ms=T0 - 5_000)
    # Back only after the message expired.
    oracle.presence("d1", online=True, at_ms=T0 + 20_000)
    oracle.accept(accepted("m1", "d1", ttl=10_000))
    verdict = oracle.verdict(end_ms=T0 + 30_000)
    assert verdict.unreachable == 1 and verdict.lost == 0 and verdict.ok


def test_online_long_enough_before_expiry_makes_it_lost():
    oracle = Oracle(grace_ms=2000)
    oracle.presence("d1", online=True, at_ms=T0 + 1_000)
    oracle.presence("d1", online=False, at_ms=T0 + 4_000)
    oracle.accept(accepted("m1", "d1", ttl=10_000))
    assert oracle.online_ms("d1", T0, T0 + 10_000) == 3_000
    assert oracle.verdict(end_ms=T0 + 30_000).lost == 1


def test_a_device_never_seen_is_unreachable_unless_presence_is_not_tracked():
    with_presence = Oracle()
    with_presence.accept(accepted("m1", "ghost"))
    assert with_presence.verdict(end_ms=T0 + 10_000).unreachable == 1
    without = Oracle(track_presence=False)
    without.accept(accepted("m1", "ghost"))
    assert without.verdict(end_ms=T0 + 10_000).lost == 1


def test_online_time_sums_the_intervals_inside_the_window():
    oracle = Oracle()
    for start, end in ((0, 10), (20, 30), (40, 50)):
        oracle.presence("d", online=True, at_ms=start)
        oracle.presence("d", online=False, at_ms=end)
    oracle.presence("d", online=True, at_ms=60)  # still online
    assert oracle.online_ms("d", 5, 45) == 5 + 10 + 5
    assert oracle.online_ms("d", 25, 100) == 5 + 10 + 40
    assert oracle.online_ms("d", 10, 20) == 0
    assert oracle.online_ms("nobody", 0, 100) == 0


def test_the_verdict_serialises_without_raw_samples():
    data = clean_oracle().verdict(end_ms=T0 + 10_000).to_dict()
    assert data["ok"] is True
    assert "receive_latencies" not in data
    assert data["receive_latency"]["p50"] == 40


@pytest.mark.parametrize(("pct", "expected"), [(50, 50), (90, 90), (99, 99), (100, 100), (0.1, 1)])
def test_percentiles_are_nearest_rank(pct, expected):
    assert percentile(list(range(1, 101)), pct) == expected


def test_latency_stats_of_nothing():
    stats = LatencyStats.of([])
    assert stats.count == 0 and stats.p99 is None
    assert LatencyStats.of([7]).p50 == LatencyStats.of([7]).max == 7

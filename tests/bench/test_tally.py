"""A worker's count of one phase: `done` exactly once, even when it expects nothing."""

from __future__ import annotations

from bench.tally import Tally


def test_a_worker_expecting_nothing_is_done_at_once_and_once() -> None:
    tally = Tally()
    tally.reset(0, latency=True)
    assert tally.take_done()
    assert not tally.take_done()


def test_done_once_every_expected_message_is_acked_and_duplicates_do_not_count() -> None:
    tally = Tally()
    tally.reset(2, latency=True)
    assert tally.received("m1", None) and not tally.received("m1", None)
    tally.acks_written(1)
    assert not tally.take_done()
    assert tally.received("m2", 0)
    tally.acks_written(1)
    assert tally.take_done() and not tally.take_done()
    report = tally.report()
    assert (report["received"], report["acked"], report["duplicates"]) == (2, 2, 1)
    assert len(report["latencies_us"]) == 1  # m1 carried no publish time

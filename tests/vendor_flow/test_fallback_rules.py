"""The fallback sender's rules for what comes after an answer (gateway/fallback.py)."""

from __future__ import annotations

from gateway.channels import SendResult
from gateway.fallback import MAX_ATTEMPTS, outcome_for, retry_delay
from gateway.store import FallbackClaim

NOW = 1_800_000_000_000


def _claim(attempts: int = 1, expires_in_ms: int = 3_600_000) -> FallbackClaim:
    return FallbackClaim(
        owner="n:1",
        message_seq=1,
        device_id="d",
        app_id="a",
        attempts=attempts,
        message_id="m",
        msg_key="k",
        title="t",
        content="c",
        expires_at=NOW + expires_in_ms,
        vendor="fcm",
        token="tok",
    )


def test_accepted_and_refused_answers_are_final() -> None:
    done = outcome_for(_claim(), SendResult("fcm", 2), NOW)
    assert (done.code, done.retry_at) == (2, None)
    dead = outcome_for(_claim(), SendResult("fcm", 90000003, "404", dead_token=True), NOW)
    assert (dead.code, dead.dead_token, dead.retry_at, dead.raw) == (90000003, True, None, "404")


def test_transient_answers_back_off_and_honour_retry_after() -> None:
    busy = SendResult("fcm", 90000011, transient=True)
    assert [retry_delay(busy, n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry_delay(SendResult("fcm", 90000011, transient=True, retry_after=30), 1) == 30
    later = outcome_for(_claim(attempts=2), busy, NOW)
    assert later.retry_at == NOW + 2_000


def test_sends_stop_after_the_cap_and_at_expiry() -> None:
    busy = SendResult("fcm", 90000011, transient=True)
    assert outcome_for(_claim(attempts=MAX_ATTEMPTS), busy, NOW).retry_at is None
    assert outcome_for(_claim(expires_in_ms=500), busy, NOW).retry_at is None


def test_an_open_circuit_waits_for_the_vendor_whatever_the_attempts() -> None:
    unsent = SendResult("fcm", 90000011, transient=True, retry_after=3.0, sent=False)
    assert outcome_for(_claim(attempts=MAX_ATTEMPTS + 5), unsent, NOW).retry_at == NOW + 3_000

"""Pure parts of client_sim: backoff delays and config validation."""

from __future__ import annotations

import random

import pytest

from client_sim import Backoff, DeviceConfig
from protocol import device_token


def test_backoff_doubles_with_jitter_up_to_the_cap():
    backoff = Backoff(0.1, 1.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.attempt == 0
    assert 0.05 <= backoff.next_delay() <= 0.1


def test_backoff_survives_many_attempts():
    backoff = Backoff(0.1, 5.0)
    for _ in range(10_000):
        assert backoff.next_delay() <= 5.0


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (2, 1), (-1, 1)])
def test_backoff_rejects_bad_bounds(base, cap):
    with pytest.raises(ValueError, match="base"):
        Backoff(base, cap)


def test_config_token_from_secret_or_explicit():
    config = DeviceConfig(url="tcp://h:1", app="a", device_id="d", secret="s")
    assert config.hello_token == device_token("s", "a", "d")
    explicit = DeviceConfig(url="tcp://h:1", app="a", device_id="d", token="t")
    assert explicit.hello_token == "t"


@pytest.mark.parametrize(
    "overrides",
    [
        {"secret": None},
        {"ack_mode": "sometimes"},
        {"ack_batch_size": 0},
        {"ack_delay": -1},
        {"backoff_base": 0},
        {"backoff_base": 10, "backoff_cap": 5},
    ],
)
def test_config_rejects_bad_values(overrides):
    values = {"url": "tcp://h:1", "app": "a", "device_id": "d", "secret": "s", **overrides}
    with pytest.raises(ValueError, match=r"."):
        DeviceConfig(**values)

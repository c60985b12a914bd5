"""What both sides of the comparison share: device names, message targets, payloads.

Message number `i` of a run goes to device `i % devices`. Each message carries
the wall-clock time (ns) at which the publisher handed it over, so a device
computes push→receive latency with the machine's one clock.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from protocol import Push, encode

APP_ID = "bench"
API_KEY = "bench-api-key"
SECRET = "bench-secret"

TITLE = "Benchmark"
CONTENT = "A notification of about the size a real one has: a short line of text."
SENT_KEY = "sent"  # ext key holding the publish time in ns


def device_name(index: int) -> str:
    return f"d{index:06d}"


def mqtt_topic(index: int) -> str:
    return f"pushgate-bench/{device_name(index)}"


@dataclass(frozen=True, slots=True)
class Share:
    """The devices one worker process holds: [first, first + count)."""

    first: int
    count: int

    def holds(self, device: int) -> bool:
        return self.first <= device < self.first + self.count


def shares(devices: int, workers: int) -> list[Share]:
    base, extra = divmod(devices, workers)
    out: list[Share] = []
    first = 0
    for w in range(workers):
        count = base + (1 if w < extra else 0)
        out.append(Share(first, count))
        first += count
    return [s for s in out if s.count]


def messages_for(share: Share, devices: int, start: int, count: int) -> int:
    """How many of messages [start, start + count) go to devices of `share`."""
    full, rest = divmod(count, devices)
    n = full * share.count
    first_device = start % devices
    for k in range(rest):
        if share.holds((first_device + k) % devices):
            n += 1
    return n


def mqtt_payload(index: int, sent_ns: int) -> bytes:
    """The MQTT payload: the same MessagePack `push` frame pushgate would send."""
    return encode(
        Push(
            id=f"m{index:026d}",
            msg_key=f"m{index:026d}",
            push_type="simple",
            title=TITLE,
            content=CONTENT,
            ext={SENT_KEY: str(sent_ns)},
            created=sent_ns // 1_000_000,
            expires=sent_ns // 1_000_000 + 3_600_000,
        )
    )


def now_ns() -> int:
    return time.time_ns()


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence; None if empty."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100.0 * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])

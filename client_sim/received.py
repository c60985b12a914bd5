"""What a device keeps about each push it received."""

from __future__ import annotations

import time
from dataclasses import dataclass

from protocol import Push


def wall_ms() -> int:
    """Wall-clock time in milliseconds since the Unix epoch (the protocol's time unit)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedPush:
    """A push as first received (duplicates are counted, not recorded)."""

    push: Push
    received_at: float  # trio.current_time() at arrival: for intervals
    received_ms: int  # wall clock at arrival: to compare with the gateway's times
    session: str  # the `welcome.session` of the connection it came on

    @property
    def latency_ms(self) -> int:
        """From the message's creation at the gateway to its arrival here."""
        return self.received_ms - self.push.created

    @property
    def expired(self) -> bool:
        """It arrived after its `expires` time (the gateway must never do that)."""
        return self.received_ms > self.push.expires

"""Counting what one worker's devices received and acked during one phase."""

from __future__ import annotations

from typing import Any

from .common import now_ns


class Tally:
    def __init__(self) -> None:
        self.reset(0, latency=False)

    def reset(self, expected: int, *, latency: bool) -> None:
        self.expected = expected
        self.measure_latency = latency
        self.seen: set[str] = set()
        self.duplicates = 0
        self.acked = 0  # distinct messages whose ack has been written to the socket
        self.latencies_us: list[int] = []
        self.first_receive_ns = 0
        self.last_receive_ns = 0
        self.last_ack_ns = 0
        self.errors: list[str] = []
        self.reported = False

    def received(self, message_id: str, sent_ns: int | None) -> bool:
        """Count one received message; False if it is a duplicate."""
        now = now_ns()
        if message_id in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(message_id)
        if not self.first_receive_ns:
            self.first_receive_ns = now
        self.last_receive_ns = now
        if self.measure_latency and sent_ns is not None:
            self.latencies_us.append((now - sent_ns) // 1000)
        return True

    def acks_written(self, new: int) -> None:
        """The acks of `new` distinct messages have just been written."""
        if new:
            self.acked += new
            self.last_ack_ns = now_ns()

    @property
    def done(self) -> bool:
        return self.acked >= self.expected

    def take_done(self) -> bool:
        """True once, when every expected message has been acked."""
        if self.reported or not self.done:
            return False
        self.reported = True
        return True

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    def report(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "acked": self.acked,
            "received": len(self.seen),
            "duplicates": self.duplicates,
            "first_receive_ns": self.first_receive_ns,
            "last_receive_ns": self.last_receive_ns,
            "last_ack_ns": self.last_ack_ns,
            "latencies_us": self.latencies_us,
            "errors": self.errors,
        }

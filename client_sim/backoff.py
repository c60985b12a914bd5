"""Jittered exponential backoff between reconnect attempts."""

from __future__ import annotations

import random

_MAX_EXPONENT = 32


class Backoff:
    """Delays that double from `base` up to `cap`, with "equal jitter".

    Attempt n waits a random time in [d/2, d] where d = min(cap, base * 2**n):
    never less than half the nominal delay (no hammering), and spread out so a
    gateway restart does not see every device come back in the same instant.
    `reset()` after a successful connection starts again from `base`.
    """

    __slots__ = ("_attempt", "_rng", "base", "cap")

    def __init__(self, base: float = 0.1, cap: float = 5.0, *, rng: random.Random | None = None):
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(self._attempt, _MAX_EXPONENT))
        self._attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self._attempt = 0

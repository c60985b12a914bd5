"""Exponential backoff with full jitter, for reconnecting and retrying."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, maximum
        self._attempt = 0

    def next_delay(self) -> float:
        """The next wait: up to min·2^n, capped; jitter spreads nodes that failed together."""
        ceiling = min(self.maximum, self.minimum * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return random.uniform(self.minimum, max(self.minimum, ceiling))

    def reset(self) -> None:
        self._attempt = 0

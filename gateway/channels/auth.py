"""Access tokens a vendor issues (OAuth, OPPO/vivo auth calls), cached until
shortly before they expire, fetched by one task at a time.

Times are wall-clock milliseconds from an injected `Clock`: the expiry a
vendor states is wall time, and tests move a `ManualClock` across it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from gateway.clock import Clock

from .result import SendResult
from .secret import Secret


@dataclass(frozen=True, slots=True)
class IssuedToken:
    value: Secret
    expires_ms: int


class AuthFailed(Exception):
    """The vendor refused to issue a token: every delivery of the call gets `result`.

    Internal to the adapters: they turn it into that result, never raise it further.
    """

    def __init__(self, result: SendResult) -> None:
        super().__init__(f"vendor auth failed: code={result.code}")
        self.result = result


class TokenCache:
    """The current access token; refreshed `margin_ms` before its expiry or when the
    vendor rejects it (`invalidate`)."""

    def __init__(
        self, fetch: Callable[[], Awaitable[IssuedToken]], clock: Clock, *, margin_ms: int
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin_ms = margin_ms
        self._token: IssuedToken | None = None
        self._lock = trio.Lock()
        self.fetches = 0  # for statistics and tests

    def _fresh(self) -> IssuedToken | None:
        token = self._token
        if token is not None and self._clock.now_ms() < token.expires_ms - self._margin_ms:
            return token
        return None

    async def get(self) -> Secret:
        """A valid token; raises `AuthFailed` (or an httpx error) when none can be had."""
        token = self._fresh()
        if token is None:
            async with self._lock:  # concurrent senders wait for one fetch
                token = self._fresh()
                if token is None:
                    self.fetches += 1
                    token = self._token = await self._fetch()
        return token.value

    def invalidate(self, value: Secret) -> None:
        """The vendor said `value` is no good: the next `get` fetches a new one."""
        if self._token is not None and self._token.value == value:
            self._token = None

"""Whether this node can use Redis right now: what `/healthz` reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

log = logging.getLogger("pushgate.broker")


@dataclass(slots=True)
class BrokerHealth:
    """`ok` while the last Redis call succeeded and the subscription is up.

    Changes are logged once per transition (`event=broker_unavailable` /
    `event=broker_available`), never once per failing call.
    """

    reachable: bool = False
    subscribed: bool = False
    last_error: str | None = None  # the failing operation and exception class
    changed_at: float = 0.0  # trio.current_time() of the last change of `ok`

    @property
    def ok(self) -> bool:
        return self.reachable and self.subscribed

    def call_succeeded(self) -> None:
        if not self.reachable:
            self._set(reachable=True, subscribed=self.subscribed)

    def call_failed(self, op: str, reason: str) -> None:
        self.last_error = f"{op}: {reason}"
        if self.reachable:
            self._set(reachable=False, subscribed=self.subscribed)

    def subscription_changed(self, subscribed: bool) -> None:
        if subscribed != self.subscribed:
            self._set(reachable=self.reachable or subscribed, subscribed=subscribed)

    def stopped(self) -> None:
        """The broker was stopped on purpose: not ok, and nothing to warn about."""
        self.reachable = self.subscribed = False
        self.last_error = "stopped"
        self.changed_at = trio.current_time()

    def _set(self, *, reachable: bool, subscribed: bool) -> None:
        was_ok = self.ok
        self.reachable, self.subscribed = reachable, subscribed
        if self.ok != was_ok:
            self.changed_at = trio.current_time()
            if self.ok:
                log.info("event=broker_available")
            else:
                log.warning(
                    "event=broker_unavailable reachable=%s subscribed=%s error=%s",
                    reachable,
                    subscribed,
                    self.last_error,
                )

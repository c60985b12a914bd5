"""One pub/sub subscription per node: its own channel and the all-nodes channel.

Reconnects with backoff whenever the subscription breaks (Redis restarted,
`CLIENT KILL`, a hung server found by the keepalive PING) and reports each
(re)subscription, so the node re-reads what hints it may have missed. Messages
go into a bounded channel without waiting: when the node falls behind, hints
are dropped and counted, and a resync is requested instead of buffering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import coredis
import trio

from .backoff import Backoff
from .config import BrokerConfig
from .errors import BrokerUnavailable, describe, is_unavailability
from .messages import Inbound, MessageError, decode

log = logging.getLogger("pushgate.broker")


class Subscriber:
    def __init__(
        self,
        client: coredis.Redis[bytes],
        config: BrokerConfig,
        channels: dict[str, str],  # Redis channel → kind ("node", "all")
        inbox: trio.MemorySendChannel[Inbound],
        *,
        on_subscribed: Callable[[bool], None],  # True the first time
        on_unsubscribed: Callable[[], None],
        on_overflow: Callable[[], None],
    ) -> None:
        self._client = client
        self._config = config
        self._channels = channels
        self._inbox = inbox
        self._on_subscribed = on_subscribed
        self._on_unsubscribed = on_unsubscribed
        self._on_overflow = on_overflow
        self.subscriptions = 0
        self.received = 0
        self.dropped = 0
        self.bad_messages = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe, then keep the subscription up until cancelled.

        The first subscription must succeed (else `BrokerUnavailable` before
        `started`); afterwards failures only mean reconnecting.
        """
        backoff = Backoff(self._config.backoff_min, self._config.backoff_max)
        while True:
            try:
                await self._subscribe_and_consume(backoff, task_status)
            except Exception as exc:
                if not is_unavailability(exc):
                    raise
                if self.subscriptions == 0:
                    raise BrokerUnavailable(f"cannot subscribe: {describe(exc)}") from None
                log.warning("event=broker_subscription_lost error=%s", describe(exc))
            else:
                log.warning("event=broker_subscription_lost error=ended")
            self._on_unsubscribed()
            await trio.sleep(backoff.next_delay())

    async def _subscribe_and_consume(
        self, backoff: Backoff, task_status: trio.TaskStatus[None]
    ) -> None:
        # Entering is bounded by the client's connect timeout and the
        # subscription timeout; a silent server by the keepalive PING.
        async with self._client.pubsub(
            channels=list(self._channels),
            ignore_subscribe_messages=True,
            retry_policy=None,  # we reconnect ourselves, so we know when to resync
            subscription_timeout=self._config.call_timeout,
            max_idle_seconds=self._config.subscriber_keepalive,
        ) as pubsub:
            first = self.subscriptions == 0
            self.subscriptions += 1
            backoff.reset()
            log.info("event=broker_subscribed count=%d", self.subscriptions)
            self._on_subscribed(first)
            if first:
                task_status.started()
            async for message in pubsub:
                self._accept(message)

    def _accept(self, message: Any) -> None:
        if message.get("type") != "message":
            return
        channel = message["channel"]
        kind = self._channels.get(channel.decode() if isinstance(channel, bytes) else channel)
        if kind is None:
            return
        self.received += 1
        try:
            origin, body = decode(message["data"], max_size=self._config.max_message_bytes)
        except MessageError as exc:
            self.bad_messages += 1
            log.warning("event=broker_bad_message channel=%s reason=%s", kind, exc)
            return
        try:
            self._inbox.send_nowait(Inbound(origin=origin, channel=kind, message=body))
        except trio.WouldBlock:
            self.dropped += 1
            self._on_overflow()

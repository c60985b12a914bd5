"""What every device connection of one gateway shares (one object, not fields per
connection), and what each one reports of itself."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import Clock
from gateway.flusher import Flusher
from gateway.hub import Hub
from gateway.idle import IdleWatch
from gateway.outbox import OutboxConfig, OutboxStatistics
from gateway.settings import Settings
from protocol import State


@dataclass(frozen=True, slots=True)
class SessionContext:
    hub: Hub
    settings: Settings
    clock: Clock
    flusher: Flusher
    idle: IdleWatch
    outbox: OutboxConfig

    @classmethod
    def create(
        cls, hub: Hub, settings: Settings, clock: Clock, flusher: Flusher, idle: IdleWatch
    ) -> SessionContext:
        limit, timeout = settings.outbox_limit, settings.send_timeout
        outbox = OutboxConfig(flusher, clock, limit=limit, send_timeout=timeout)
        return cls(hub, settings, clock, flusher, idle, outbox)


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    state: State
    outbox: OutboxStatistics
    delivered: int  # pushes written to the socket
    acks_in_flight: int  # acked ids waiting for their commit

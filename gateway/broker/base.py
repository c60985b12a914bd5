"""What a node needs from the shared routing layer, whatever implements it.

A node (the hub, `serve`, the API) codes against `Broker`; `RedisBroker` is
the implementation. Every async method raises `BrokerUnavailable` when the
layer cannot answer in time, and nothing else for an unreachable backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from .health import BrokerHealth
from .messages import BrokerMessage, Inbound
from .model import Claim, FanOut, LiveNode, NodeInfo, Route


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerStatistics:
    subscriptions: int  # times the subscription was established (1 + reconnects)
    received: int  # pub/sub messages that reached this node
    dropped: int  # ... dropped because the inbox was full
    bad_messages: int  # ... ignored because they were not broker messages
    resyncs: int  # completed runs of the resync hook
    resync_failures: int
    heartbeats: int  # liveness writes that succeeded
    route_refreshes: int  # completed refreshes of all local routes
    local_routes: int  # routes this node holds and refreshes
    inbox_queued: int  # messages waiting in the inbox


class Broker(Protocol):
    @property
    def node_id(self) -> str: ...

    @property
    def health(self) -> BrokerHealth: ...

    @property
    def inbox(self) -> trio.MemoryReceiveChannel[Inbound]:
        """Messages for this node (its channel, the all-nodes channel, and local kicks)."""
        ...

    @property
    def info(self) -> NodeInfo: ...

    def statistics(self) -> BrokerStatistics: ...

    def set_info(self, info: NodeInfo) -> None:
        """Replace what the liveness key says (e.g. once the ports are bound)."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, register, subscribe, then keep it all alive until cancelled."""
        ...

    async def heartbeat(self) -> None:
        """Write the liveness key now (the broker also does so on its own schedule)."""
        ...

    async def live_nodes(self, app: str | None = None) -> list[LiveNode]: ...

    async def claim_route(self, app: str, device: str, epoch: int) -> Claim: ...

    async def release_route(self, app: str, device: str, epoch: int) -> bool: ...

    async def forget_route(self, app: str, device: str, route: Route) -> bool: ...

    async def refresh_routes(self) -> list[tuple[str, str, Route]]: ...

    async def lookup_routes(self, app: str, devices: Iterable[str]) -> dict[str, Route | None]: ...

    async def publish(self, node_id: str, message: BrokerMessage) -> int: ...

    async def publish_all(self, message: BrokerMessage) -> int: ...

    async def deliver(
        self, app: str, message_id: str, payload: bytes, devices: Iterable[str]
    ) -> FanOut: ...

    async def deliver_many(
        self, items: Sequence[tuple[str, str, bytes, Sequence[str]]]
    ) -> list[FanOut]: ...

    async def take_token(self, app: str, rate: float, burst: int) -> float: ...


OnlineCounts = Mapping[str, int]

"""What the load generator's two client protocols share (`MqttLink`, `PushgateLink`):
an `asyncio.Protocol` that knows whether it is still connected, why it
closed, and how to hang up or close within a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast


class LinkClosed(ConnectionError):
    """The connection is gone (or was refused during its handshake)."""


class ClientLink(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.error: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport is not an asyncio.Transport subclass, but is one.
        # (asyncio and uvloop both set TCP_NODELAY on their TCP transports.)
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.error is None:
            self.error = f"connection lost: {exc!r}" if exc else "connection closed"
        for waiter in self.waiters():
            if not waiter.done():
                waiter.set_exception(LinkClosed(self.error))
        if not self.closed.done():
            self.closed.set_result(None)

    def waiters(self) -> Iterable[asyncio.Future[Any]]:
        """Futures a handshake awaits: failed when the connection is lost."""
        return ()

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise LinkClosed(self.error or "not connected")
        self.transport.write(data)

    def fail(self, message: str) -> None:
        """The peer sent what we cannot read: record why and hang up."""
        self.error = message
        self.abort()

    def abort(self) -> None:
        """Hang up at once."""
        if self.transport is not None:
            self.transport.abort()

    def goodbye(self) -> bytes:
        """What to send before closing (an MQTT DISCONNECT, a WebSocket close)."""
        return b""

    async def disconnect(self, timeout: float) -> None:
        """Say goodbye and close, then wait, bounded, until the connection is closed."""
        if self.transport is not None:
            if farewell := self.goodbye():
                self.transport.write(farewell)
            self.transport.close()
        await asyncio.wait_for(asyncio.shield(self.closed), timeout)

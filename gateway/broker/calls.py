"""One bounded call to Redis: the client a running broker holds, its Lua scripts, and
the health every outcome updates. A call fails only with `BrokerUnavailable`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import coredis
import trio

from .config import BrokerConfig
from .errors import BrokerUnavailable, describe, is_unavailability
from .health import BrokerHealth
from .scripts import CLAIM_ROUTE, HEARTBEAT, RELEASE_ROUTE, TAKE_TOKEN

T = TypeVar("T")
Client = coredis.Redis[bytes]


class Scripts:
    """The Lua scripts, registered on the client (EVALSHA, loaded again after a restart)."""

    def __init__(self, client: Client) -> None:
        self.claim = client.register_script(CLAIM_ROUTE)
        self.release = client.register_script(RELEASE_ROUTE)
        self.heartbeat = client.register_script(HEARTBEAT)
        self.take_token = client.register_script(TAKE_TOKEN)


class Caller:
    """Runs calls on the client of the running broker (`attach`), each within
    `call_timeout`; Redis being unreachable becomes `BrokerUnavailable`."""

    def __init__(self, config: BrokerConfig, health: BrokerHealth) -> None:
        self.config = config
        self.health = health
        self._client: Client | None = None
        self._scripts: Scripts | None = None

    def attach(self, client: Client) -> None:
        self._client = client
        self._scripts = Scripts(client)

    def detach(self) -> None:
        self._client = None

    @property
    def scripts(self) -> Scripts:
        """The scripts of the attached client (inside a call, there is one)."""
        if self._scripts is None:
            raise BrokerUnavailable("the broker is not running")
        return self._scripts

    async def call(self, op: str, fn: Callable[[Client], Awaitable[T]]) -> T:
        client = self._client
        if client is None:
            raise BrokerUnavailable(f"{op}: the broker is not running")
        try:
            with trio.fail_after(self.config.call_timeout):
                result = await fn(client)
        except Exception as exc:
            if not is_unavailability(exc):
                raise
            reason = describe(exc)
            self.health.call_failed(op, reason)
            raise BrokerUnavailable(f"{op}: {reason}") from exc
        self.health.call_succeeded()
        return result


def ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def only_unavailable(group: BaseExceptionGroup[Any]) -> BrokerUnavailable | None:
    """The BrokerUnavailable inside a group that holds nothing else, or None."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    if leaves and all(isinstance(e, BrokerUnavailable) for e in leaves):
        return leaves[0]  # type: ignore[return-value]
    return None

"""The one failure a broker call can surface: Redis could not answer in time."""

from __future__ import annotations

import anyio
import trio
from coredis.exceptions import RedisError


class BrokerUnavailable(Exception):
    """Redis was unreachable, failed, or did not answer within the call timeout.

    The caller carries on without the shared routing layer (a push stays
    stored; the device gets it from the store at its next `welcome` or the
    node's next sweep) and may retry later.
    """


# What Redis being down, restarting, hung or refusing looks like from coredis
# (anyio's errors: a connection closed under a request being made on it).
_UNAVAILABLE = (
    RedisError,
    OSError,
    TimeoutError,
    trio.TooSlowError,
    trio.BrokenResourceError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


def is_unavailability(exc: BaseException) -> bool:
    """True if `exc` (or every leaf of an exception group) says Redis is not there."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_unavailability(inner) for inner in exc.exceptions)
    return isinstance(exc, (*_UNAVAILABLE, BrokerUnavailable))


def describe(exc: BaseException) -> str:
    """A short, secret-free reason for logs: the exception classes, never their text.

    (coredis puts the connection URL, which may hold a password, into some messages.)
    """
    if isinstance(exc, BaseExceptionGroup):
        return "+".join(sorted({describe(inner) for inner in exc.exceptions}))
    return type(exc).__name__


def cancelled_part(group: BaseExceptionGroup[BaseException]) -> BaseExceptionGroup[BaseException]:
    """The group to re-raise when a cancellation tore connections down under requests.

    coredis's tasks then fail with unavailability errors beside trio's
    `Cancelled`; those are noise of the shutdown, the cancellation is what
    counts. Any other error is kept.
    """
    cancelled, rest = group.split(trio.Cancelled)
    if cancelled is not None and rest is not None and is_unavailability(rest):
        return cancelled
    return group

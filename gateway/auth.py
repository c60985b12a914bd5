"""Who a device is: its hello (app and token) and its binds (signature).

`receive_hello` reads the first frame under the hello timeout, lets the
connection's state machine judge it, checks the app and the device token
through the hub, and on any problem sends the `error` frame and closes (each
step bounded in time). It returns the accepted hello, or None when the
connection is over. `bind_allowed` checks a bind frame's signature.
"""

from __future__ import annotations

import logging

import trio

from gateway.hub import Hub
from gateway.outbox import CLOSE_TIMEOUT
from gateway.store import StoreUnavailable
from gateway.transports.base import Transport
from protocol import (
    Bind,
    ErrorCode,
    Frame,
    Hello,
    ProtocolError,
    Rejection,
    ServerConnection,
    encode,
    hello_problem,
    verify_bind_signature,
    verify_device_token,
)

log = logging.getLogger("pushgate.session")

STORE_MESSAGE = "the gateway cannot record this now (store unavailable); retry later"


async def receive_hello(
    transport: Transport, conn: ServerConnection, hub: Hub, timeout: float
) -> Hello | None:
    event: Frame | Rejection | None = None
    with trio.move_on_after(timeout):
        try:
            payload = await transport.receive()
        except ProtocolError as exc:
            event = conn.reject(exc)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        else:
            if payload is None:
                return None
            event = conn.receive(payload)
    if event is None:
        event = conn.error(ErrorCode.HELLO_TIMEOUT, "no hello within the hello timeout")
    elif isinstance(event, Hello):
        rejection = await _authenticate(event, conn, hub)
        if rejection is None:
            return event
        event = rejection
    assert isinstance(event, Rejection)
    await _refuse(transport, event)
    return None


async def _authenticate(hello: Hello, conn: ServerConnection, hub: Hub) -> Rejection | None:
    problem = hello_problem(hello)
    if problem is not None:
        return conn.error(*problem)
    try:
        app = await hub.app(hello.app)
    except StoreUnavailable:
        return conn.error(ErrorCode.STORE_UNAVAILABLE, STORE_MESSAGE)
    if app is None or not verify_device_token(app.secret, hello.app, hello.device, hello.token):
        return conn.error(ErrorCode.AUTH_FAILED, "unknown app or bad token")
    conn.authenticated()
    return None


async def _refuse(transport: Transport, rejection: Rejection) -> None:
    """Send the error, then close (before welcome every error is fatal)."""
    assert rejection.close_code is not None
    log.info("event=hello_rejected peer=%s code=%s", transport.peer, rejection.error.code)
    with trio.move_on_after(CLOSE_TIMEOUT):
        try:
            await transport.send([encode(rejection.error)])
            await transport.close(rejection.close_code)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass


async def bind_allowed(hub: Hub, app_id: str, device_id: str, bind: Bind) -> bool:
    """Whether the bind's signature is the app's, for this device and user."""
    app = await hub.app(app_id)
    return app is not None and verify_bind_signature(
        app.secret, app_id, device_id, bind.user, bind.sig
    )

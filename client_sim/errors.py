"""What can go wrong on the device side, as exceptions an SDK can switch on."""

from __future__ import annotations


class ConnectionClosed(Exception):
    """The connection is gone: the gateway closed it, it broke, or we closed it.

    `code` is the WebSocket close code (1000 normal, 1006 lost without a close
    frame, 4xxx application codes, ...) or None on the TCP transport, which has
    no close codes. `reason` is the close reason or a short description.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return f"connection closed (code={self.code}): {self.reason}"


class HandshakeError(ConnectionClosed):
    """The WebSocket upgrade failed; `status_code` is the HTTP status if one came."""

    def __init__(self, status_code: int | None, reason: str) -> None:
        super().__init__(None, reason)
        self.status_code = status_code


class GatewayError(Exception):
    """The gateway answered a request (`hello`, `bind`, `unbind`) with an `error` frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HelloRejected(GatewayError):
    """`hello` was refused (`auth_failed`, `bad_hello`, ...): retrying cannot help."""

"""The protocol's own error: everything a peer can get wrong ends up here."""

from __future__ import annotations

from .closing import ErrorCode


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    `code` goes into the `error` frame; whether the connection closes after it
    is the connection state's to say (`closing.is_fatal`).
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

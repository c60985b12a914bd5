"""The protocol's own error: everything a peer can get wrong ends up here."""

from __future__ import annotations

# Codes carried by `error` frames. Stable strings: SDKs switch on them.
AUTH_FAILED = "auth_failed"
BAD_HELLO = "bad_hello"
HELLO_REQUIRED = "hello_required"
HELLO_TIMEOUT = "hello_timeout"
MALFORMED_FRAME = "malformed_frame"
UNKNOWN_FRAME_TYPE = "unknown_frame_type"
BAD_FIELD = "bad_field"
FRAME_TOO_LARGE = "frame_too_large"
BAD_SIGNATURE = "bad_signature"
TEXT_NOT_ALLOWED = "text_not_allowed"


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow.

    `code` is one of the module-level codes above and is what goes into the
    `error` frame; `fatal` says whether the connection must close after it.
    """

    def __init__(self, code: str, message: str, *, fatal: bool = True) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fatal = fatal

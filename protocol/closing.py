"""How a device connection ends, in one vocabulary: error codes, bye reasons, close codes.

Two families, as in centrifuge: an `error` frame is either a *reply* (the
connection stays open) or *fatal* (the gateway closes the connection after
it); a `bye` says the gateway is closing for a reason the device can act on.
On WebSocket every close carries a code (RFC 6455 §7.4); `close_code_for`
maps an error code to it. The gateway and the reference client both import
this module, so the two sides never disagree on a name or a number.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """Codes carried by `error` frames. Stable strings: SDKs switch on them."""

    AUTH_FAILED = "auth_failed"  # hello: a bad or missing token, or an unknown app
    BAD_HELLO = "bad_hello"  # hello: v, platform or IDs wrong; or a second hello
    HELLO_REQUIRED = "hello_required"  # the first frame was not a hello
    HELLO_TIMEOUT = "hello_timeout"  # no hello within the hello timeout
    MALFORMED_FRAME = "malformed_frame"  # not MessagePack, not a map, no string `t`
    UNKNOWN_FRAME_TYPE = "unknown_frame_type"  # a `t` a device may not send
    BAD_FIELD = "bad_field"  # a field of a known frame has the wrong type
    FRAME_TOO_LARGE = "frame_too_large"  # over the frame size limit
    TEXT_NOT_ALLOWED = "text_not_allowed"  # a WebSocket text message
    BAD_SIGNATURE = "bad_signature"  # a bind whose signature does not match
    STORE_UNAVAILABLE = "store_unavailable"  # the gateway cannot record it now (full disk)
    SERVER_BUSY = "server_busy"  # the gateway is at its connection limit (TCP)
    BAD_VENDOR = "bad_vendor"  # a `vendor` frame with an unknown vendor or a bad token


# Errors that are replies once the connection is open: the connection stays.
# Every other code is fatal, and before `welcome` every error is fatal (a
# `bad_hello` or `store_unavailable` answering the hello itself closes).
REPLY_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.BAD_HELLO,
        ErrorCode.STORE_UNAVAILABLE,
        ErrorCode.BAD_VENDOR,
    }
)


def is_fatal(code: str, *, open: bool) -> bool:
    """Whether an `error` with this code closes the connection (`open`: past welcome)."""
    return not open or code not in REPLY_CODES


class ByeReason(StrEnum):
    """Why the gateway closes a healthy connection (`bye` frame)."""

    REPLACED = "replaced"  # a newer connection of the same device took over: do not reconnect
    IDLE_TIMEOUT = "idle_timeout"  # nothing received for 2 x heartbeat
    SHUTDOWN = "shutdown"  # the gateway is stopping
    SLOW_CONSUMER = "slow_consumer"  # the device did not read fast enough; messages stay queued


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 §7.4.1 and the IANA registry) pushgate uses."""

    NORMAL = 1000  # after a `bye`
    GOING_AWAY = 1001  # after `bye shutdown`
    PROTOCOL_ERROR = 1002  # broken WebSocket framing
    UNSUPPORTED_DATA = 1003  # a text message
    ABNORMAL = 1006  # never sent: the connection was lost without a close frame
    INVALID_DATA = 1007  # bad UTF-8 in a text message or a close reason
    POLICY_VIOLATION = 1008  # after a fatal protocol `error`
    MESSAGE_TOO_BIG = 1009  # a message over the frame size limit
    TRY_AGAIN_LATER = 1013  # after `error store_unavailable`: retry with backoff


_CLOSE_FOR_ERROR: dict[str, CloseCode] = {
    ErrorCode.TEXT_NOT_ALLOWED: CloseCode.UNSUPPORTED_DATA,
    ErrorCode.FRAME_TOO_LARGE: CloseCode.MESSAGE_TOO_BIG,
    ErrorCode.STORE_UNAVAILABLE: CloseCode.TRY_AGAIN_LATER,
    ErrorCode.SERVER_BUSY: CloseCode.TRY_AGAIN_LATER,
}


def close_code_for(code: str) -> CloseCode:
    """The WebSocket close code after a fatal `error` with this code."""
    return _CLOSE_FOR_ERROR.get(code, CloseCode.POLICY_VIOLATION)


def close_code_for_bye(reason: str) -> CloseCode:
    """The WebSocket close code after a `bye` with this reason."""
    return CloseCode.GOING_AWAY if reason == ByeReason.SHUTDOWN else CloseCode.NORMAL

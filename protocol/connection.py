"""The gateway's side of one device connection, as a state machine (h11's way).

Sans-IO: payloads in, frames or rejections out; no sockets, no clock. A
driver (the gateway's `Session`) reads whole frame payloads from its
transport and passes each to `receive()`, which answers with the frame to
act on or a `Rejection` (the `error` frame to send, and whether to close
after it). The driver reports the steps the device cannot see
(`authenticated()`, `attached()`, `close()`), and the table below decides
what each next frame means in the state those steps lead to:

    AWAITING_HELLO --hello--> AUTHENTICATING --authenticated()--> ATTACHING
                                                                      |
                                                                 attached()
                                                                      v
    (any state) --close(), a fatal error--> CLOSING --closed()--> CLOSED <-- OPEN

Frames are read only in AWAITING_HELLO and OPEN; calling `receive()` in
another state is the driver's bug (`LocalProtocolError`), never the peer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from .closing import CloseCode, ErrorCode, close_code_for, close_code_for_bye, is_fatal
from .codec import DEFAULT_MAX_FRAME_SIZE, decode
from .errors import ProtocolError
from .frames import PLATFORMS, PROTOCOL_VERSION, Bye, Error, Frame, Hello, is_valid_id
from .vendors import registration_problem


class State(Enum):
    AWAITING_HELLO = "awaiting_hello"  # the first frame must be a hello
    AUTHENTICATING = "authenticating"  # hello received: its app and token are being checked
    ATTACHING = "attaching"  # welcome queued: the device is being recorded
    OPEN = "open"  # acks, binds, pings flow
    CLOSING = "closing"  # a close is queued (a bye or a fatal error): nothing more is read
    CLOSED = "closed"


class Verdict(Enum):
    ACCEPT = "accept"  # the driver acts on the frame
    REPLY = "reply"  # answered by an error frame; the connection stays
    FATAL = "fatal"  # answered by an error frame, then the connection closes


# What a device frame (by its `t`) means in each state that reads frames:
# (verdict, the error code if not accepted). `OTHER` is every other `t`,
# the gateway's own frame types included (a device may not send them).
OTHER: Final = "*"
TRANSITIONS: Final[dict[State, dict[str, tuple[Verdict, ErrorCode | None]]]] = {
    State.AWAITING_HELLO: {
        "hello": (Verdict.ACCEPT, None),
        OTHER: (Verdict.FATAL, ErrorCode.HELLO_REQUIRED),
    },
    State.OPEN: {
        "ack": (Verdict.ACCEPT, None),
        "bind": (Verdict.ACCEPT, None),
        "unbind": (Verdict.ACCEPT, None),
        "ping": (Verdict.ACCEPT, None),
        "vendor": (Verdict.ACCEPT, None),
        "hello": (Verdict.REPLY, ErrorCode.BAD_HELLO),
        OTHER: (Verdict.FATAL, ErrorCode.UNKNOWN_FRAME_TYPE),
    },
}

_MESSAGES: Final[dict[ErrorCode, str]] = {
    ErrorCode.HELLO_REQUIRED: "the first frame must be hello",
    ErrorCode.BAD_HELLO: "hello already done on this connection",
    ErrorCode.UNKNOWN_FRAME_TYPE: "a device may not send this frame type",
}


class LocalProtocolError(Exception):
    """The driver did something the state machine does not allow (a bug, not the peer)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An `error` frame to send; `close_code` is set when the connection closes after it."""

    error: Error
    close_code: CloseCode | None

    @property
    def fatal(self) -> bool:
        return self.close_code is not None


def hello_problem(hello: Hello) -> tuple[ErrorCode, str] | None:
    """What is wrong with a hello before its token is checked, or None."""
    if hello.v != PROTOCOL_VERSION:
        return (
            ErrorCode.BAD_HELLO,
            f"unsupported protocol version; this gateway speaks v={PROTOCOL_VERSION}",
        )
    if hello.platform not in PLATFORMS:
        return ErrorCode.BAD_HELLO, "platform must be 'android' or 'ios'"
    if not is_valid_id(hello.app) or not is_valid_id(hello.device):
        return ErrorCode.BAD_HELLO, "app and device must be IDs (1-128 chars, no spaces)"
    if not hello.token:
        return ErrorCode.AUTH_FAILED, "missing token"
    if hello.vendor is not None or hello.vendor_token is not None:
        problem = registration_problem(hello.vendor, hello.vendor_token)
        if problem is not None:
            field = "vendor_token" if problem[0] == "token" else problem[0]
            return ErrorCode.BAD_HELLO, f"{field}: {problem[1]}"
    return None


class ServerConnection:
    """One device connection as the gateway sees it: its state, and what frames mean in it."""

    __slots__ = ("_max_frame_size", "state")

    def __init__(self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.state = State.AWAITING_HELLO
        self._max_frame_size = max_frame_size

    @property
    def open(self) -> bool:
        return self.state is State.OPEN

    @property
    def closing(self) -> bool:
        """A close is queued or done: deliver nothing more, read nothing more."""
        return self.state is State.CLOSING or self.state is State.CLOSED

    def receive(self, payload: bytes) -> Frame | Rejection:
        """One whole frame payload from the device: the frame to act on, or the error to send."""
        row = TRANSITIONS.get(self.state)
        if row is None:
            raise LocalProtocolError(f"no frame is read in state {self.state.name}")
        try:
            frame = decode(payload, max_size=self._max_frame_size)
        except ProtocolError as exc:
            return self.reject(exc)
        verdict, code = row.get(frame.T) or row[OTHER]
        if verdict is Verdict.ACCEPT:
            if isinstance(frame, Hello):
                self.state = State.AUTHENTICATING
            return frame
        assert code is not None
        message = _MESSAGES[code]
        if code is ErrorCode.UNKNOWN_FRAME_TYPE:
            message = f"a device may not send {frame.T!r}"
        return self._error(Error(code=code, message=message), fatal=verdict is Verdict.FATAL)

    def reject(self, exc: ProtocolError) -> Rejection:
        """Junk below the frame layer (bad framing, a text message, an oversize one): fatal."""
        return self._error(Error(code=exc.code, message=exc.message), fatal=True)

    def error(self, code: ErrorCode, message: str) -> Rejection:
        """An error the gateway raises itself (auth_failed, store_unavailable, ...).

        A reply once the connection is open if the code is a reply code
        (closing.REPLY_CODES); fatal otherwise, and always before `welcome`.
        """
        return self._error(Error(code=code, message=message), fatal=is_fatal(code, open=self.open))

    def fail(self, code: ErrorCode, message: str) -> Rejection:
        """The gateway ends the connection with this error, in any state."""
        return self._error(Error(code=code, message=message), fatal=True)

    def authenticated(self) -> None:
        """The hello's app and token are good: welcome is queued, the device is being recorded."""
        self._advance(State.AUTHENTICATING, State.ATTACHING)

    def attached(self) -> None:
        """The device is recorded and routable: frames flow (unless a close came meanwhile)."""
        self._advance(State.ATTACHING, State.OPEN)

    def close(self, bye: Bye) -> CloseCode | None:
        """The gateway ends a healthy connection; None if it is already closing."""
        if self.closing:
            return None
        self.state = State.CLOSING
        return close_code_for_bye(bye.reason)

    def closed(self) -> None:
        self.state = State.CLOSED

    def _error(self, error: Error, *, fatal: bool) -> Rejection:
        if not fatal:
            return Rejection(error, None)
        if not self.closing:
            self.state = State.CLOSING
        return Rejection(error, close_code_for(error.code))

    def _advance(self, expected: State, to: State) -> None:
        # A close may come at any time (a replacing connection, shutdown): it stays.
        if self.closing:
            return
        if self.state is not expected:
            raise LocalProtocolError(f"expected state {expected.name}, in {self.state.name}")
        self.state = to

"""Overload and unavailability: how many connections, and how a refusal looks.

Two ways the gateway says "not now" to a device, both before any delivery
state is touched, so the device simply retries with backoff:

- **server_busy** — the gateway already holds `max_connections` device
  connections. A WebSocket upgrade gets an HTTP 503 with a plain-text body and
  `Retry-After`; a TCP connection gets one `error` frame (code `server_busy`),
  then the gateway half-closes, waits briefly for the device to finish
  sending (so the frame is not lost to a reset) and closes.
- **store_unavailable** — the store cannot commit (a full disk). Pushes
  answer HTTP 503; a device whose `hello` cannot be recorded gets an `error`
  frame with this code and WebSocket close 1013 (try again later); an `ack`,
  `bind` or `unbind` that cannot be recorded gets the same `error` frame as a
  reply and the connection stays open (an unrecorded ack only means the
  message is sent again on a later connection).

Refusals are themselves bounded: at most `REFUSALS_IN_FLIGHT` connections are
being refused at once, each for at most `REFUSAL_TIMEOUT` seconds; past that a
new connection is closed at once without a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from protocol import Error, ErrorCode, encode
from protocol.framing import prefix

REFUSALS_IN_FLIGHT = 256
REFUSAL_TIMEOUT = 2.0
BUSY_MESSAGE = "the gateway is at its connection limit; retry later with backoff"


@dataclass(slots=True)
class ConnectionLimiter:
    """Counts device connections from accept to close; `admit()` says whether one fits."""

    limit: int
    active: int = 0
    refusing: int = 0
    refused: int = 0  # total, for metrics and tests

    def admit(self) -> bool:
        """Take a slot if there is one (the caller must `release()` it)."""
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1

    def begin_refusal(self) -> bool:
        """True if this refusal may be answered politely (the caller ends it)."""
        self.refused += 1
        if self.refusing >= REFUSALS_IN_FLIGHT:
            return False
        self.refusing += 1
        return True

    def end_refusal(self) -> None:
        self.refusing -= 1


def busy_error_frame() -> bytes:
    """The length-prefixed `error server_busy` frame a refused TCP device gets."""
    payload = encode(Error(code=ErrorCode.SERVER_BUSY, message=BUSY_MESSAGE))
    return prefix(payload) + payload


async def refuse_tcp(stream: trio.abc.Stream) -> None:
    """Say `server_busy` on a TCP connection, half-close, drain briefly; never raises.

    The caller closes the stream afterwards. Draining until the device closes
    (or the timeout) means its `hello`, already on the way, does not turn our
    close into a reset that would destroy the error frame in flight. (TLS has
    no half-close: there the device reads the frame, then the close.)
    """
    with trio.move_on_after(REFUSAL_TIMEOUT):
        try:
            await stream.send_all(busy_error_frame())
            if isinstance(stream, trio.abc.HalfCloseableStream):
                await stream.send_eof()
            while await stream.receive_some(4096):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

"""Echo servers for Autobahn|Testsuite's fuzzingclient.

`pushgate`: the gateway's own WebSocket transport (gateway/transports/ws.py:
its fast path, its wsproto fallback, its close handshake), echoing every
message. Devices may not send text (the contract closes with 1003), but most
of Autobahn's cases are text, so this harness lets text through the
transport's one seam for it (`_text`) and echoes it as text; everything else
is the transport as the gateway runs it.

`wsproto`: a plain wsproto echo server on the same sockets, to tell wsproto's
own results apart from the transport's.

    python -m bench.autobahn.echo --impl pushgate --port 9001

prints `port=N` once it listens (port 0 picks a free one).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Awaitable, Callable

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from gateway.transports.ws import (
    WebSocketClosed,
    WebSocketTransport,
    data_frame,
)
from gateway.transports.ws_handshake import HandshakeFailed
from protocol import ErrorCode, ProtocolError, close_code_for

# Autobahn's largest messages (cases 9.x) are 16 MiB.
MAX_MESSAGE = 16 * 1024 * 1024 + 1024
HANDSHAKE_SECONDS = 10.0
CHUNK = 65_536
_TEXT_FIN = 0x81


class Text(bytes):
    """The UTF-8 bytes of a text message (an echo goes back as text)."""


class EchoTransport(WebSocketTransport):
    """The gateway's transport, with text messages delivered instead of refused."""

    __slots__ = ("_text_parts", "_text_size")

    def __init__(self, stream: trio.abc.Stream, peer: str, max_frame_size: int) -> None:
        super().__init__(stream, peer, max_frame_size)
        self._text_parts: list[str] = []
        self._text_size = 0

    def _text(self, event: TextMessage) -> bytes | None:
        self._text_size += len(event.data)
        if self._text_size > MAX_MESSAGE:
            raise ProtocolError(
                ErrorCode.FRAME_TOO_LARGE, f"text message over {MAX_MESSAGE} characters"
            )
        self._text_parts.append(event.data)
        if not event.message_finished:
            return None
        text = "".join(self._text_parts)
        self._text_parts.clear()
        self._text_size = 0
        return Text(text.encode())


def _nodelay(stream: trio.SocketStream) -> None:
    stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def echo_pushgate(stream: trio.SocketStream) -> None:
    _nodelay(stream)
    transport = EchoTransport(stream, "autobahn", MAX_MESSAGE)
    try:
        with trio.fail_after(HANDSHAKE_SECONDS):
            await transport.handshake()
        while (message := await transport.receive()) is not None:
            if isinstance(message, Text):
                transport.write_nowait(bytes((_TEXT_FIN,)) + data_frame(message)[1:])
                await transport.flush()
            else:
                await transport.send([message])
    except ProtocolError as exc:
        await transport.close(close_code_for(exc.code))
    except (
        HandshakeFailed,
        WebSocketClosed,
        trio.TooSlowError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
    ):
        pass
    finally:
        await transport.aclose_forcefully()


async def echo_wsproto(stream: trio.SocketStream) -> None:
    """wsproto's own echo server (as in its examples): nothing of pushgate's."""
    _nodelay(stream)
    ws = WSConnection(ConnectionType.SERVER)
    failed = False  # broken framing: our close is sent, nothing more is read (RFC 6455 §7.1.7)
    try:
        while ws.state is not ConnectionState.CLOSED and not failed:
            data = await stream.receive_some(CHUNK)
            ws.receive_data(data or None)
            out = b""
            for event in ws.events():
                if isinstance(event, Request):
                    out += ws.send(AcceptConnection())
                elif isinstance(event, Message) and ws.state is ConnectionState.OPEN:
                    out += ws.send(event)
                elif isinstance(event, Ping) and ws.state is ConnectionState.OPEN:
                    out += ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    if ws.state is ConnectionState.REMOTE_CLOSING:
                        out += ws.send(event.response())
                    elif ws.state is ConnectionState.OPEN:  # wsproto found broken framing
                        out += ws.send(CloseConnection(code=event.code, reason=event.reason))
                        failed = True
                        break
            if out:
                await stream.send_all(out)
            if not data:
                break
    except (
        RemoteProtocolError,
        LocalProtocolError,
        trio.BrokenResourceError,
        trio.ClosedResourceError,
    ):
        pass
    finally:
        await trio.aclose_forcefully(stream)


HANDLERS: dict[str, Callable[[trio.SocketStream], Awaitable[None]]] = {
    "pushgate": echo_pushgate,
    "wsproto": echo_wsproto,
}


async def serve(impl: str, port: int) -> None:
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    print(f"port={listeners[0].socket.getsockname()[1]}", flush=True)
    await trio.serve_listeners(HANDLERS[impl], listeners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--impl", choices=sorted(HANDLERS), required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.impl, args.port)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

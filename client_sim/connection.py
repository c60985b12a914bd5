"""Opening a device connection from a URL.

    ws://HOST:PORT/v1/connect     WebSocket, one frame per binary message
    wss://HOST:PORT/v1/connect    the same inside TLS
    tcp://HOST:PORT               4-byte big-endian length prefix, then the frame
    tls://HOST:PORT               the same inside TLS

Passing `ssl_context` also turns TLS on for `ws://` and `tcp://`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import trio

from protocol import DEFAULT_MAX_FRAME_SIZE

from .errors import ConnectionClosed
from .tcp import TcpConnection
from .transport import DeviceConnection
from .websocket import WebSocketConnection

__all__ = ["DeviceConnection", "Endpoint", "open_device_connection", "parse_url"]

_SCHEMES = {"ws": (True, False), "wss": (True, True), "tcp": (False, False), "tls": (False, True)}
_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how to connect, parsed from a URL."""

    host: str
    port: int
    websocket: bool
    tls: bool
    netloc: str  # the WebSocket Host header
    target: str  # the WebSocket request target (path and query)


def parse_url(url: str) -> Endpoint:
    """Parse a gateway URL; `ValueError` for anything unusable."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"unsupported scheme in {url!r}: use ws, wss, tcp or tls")
    websocket, tls = _SCHEMES[parts.scheme]
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if not parts.hostname or port is None:
        raise ValueError(f"{url!r} needs a host and a port")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Endpoint(
        host=parts.hostname,
        port=port,
        websocket=websocket,
        tls=tls,
        netloc=parts.netloc,
        target=target,
    )


async def open_device_connection(
    url: str,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    connect_timeout: float = 10.0,
    write_timeout: float = 10.0,
    close_timeout: float = 2.0,
    ssl_context: ssl.SSLContext | None = None,
    local_address: str | None = None,
) -> DeviceConnection:
    """Connect to the gateway and complete the transport handshake (not `hello`).

    `connect_timeout` bounds TCP connect, TLS and WebSocket handshakes together;
    `write_timeout` bounds every write (a gateway that stops reading gets the
    connection closed); `close_timeout` bounds a graceful close.
    `local_address` picks the source IP (e.g. 127.0.0.5), to spread many
    connections over several addresses in load runs.

    Raises `OSError` (cannot connect), `trio.TooSlowError` (connect timeout),
    `ConnectionClosed` (the connection ended during the handshake;
    `HandshakeError` if the WebSocket upgrade was refused).
    """
    endpoint = parse_url(url)
    with trio.fail_after(connect_timeout):
        socket_stream = await trio.open_tcp_stream(
            endpoint.host, endpoint.port, local_address=local_address
        )
        stream: trio.abc.Stream = socket_stream
        try:
            if endpoint.tls or ssl_context is not None:
                context = ssl_context or ssl.create_default_context()
                ssl_stream = trio.SSLStream(socket_stream, context, server_hostname=endpoint.host)
                stream = ssl_stream
                await _tls_handshake(ssl_stream)
            if not endpoint.websocket:
                return TcpConnection(
                    stream,
                    max_frame_size=max_frame_size,
                    write_timeout=write_timeout,
                    close_timeout=close_timeout,
                )
            connection = WebSocketConnection(
                stream,
                max_frame_size=max_frame_size,
                write_timeout=write_timeout,
                close_timeout=close_timeout,
            )
            await connection.handshake(endpoint.netloc, endpoint.target)
            return connection
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise


async def _tls_handshake(stream: trio.SSLStream[trio.SocketStream]) -> None:
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        raise ConnectionClosed(None, f"TLS handshake failed: {exc.__cause__ or exc}") from exc

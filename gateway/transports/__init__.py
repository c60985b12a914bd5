"""How bytes move: WebSocket (wsproto) and length-prefixed TCP."""

from .base import Transport
from .tcp import TcpTransport
from .ws import WebSocketClosed, WebSocketTransport
from .ws_handshake import HandshakeFailed

__all__ = ["HandshakeFailed", "TcpTransport", "Transport", "WebSocketClosed", "WebSocketTransport"]

"""pushgate's device protocol, sans-IO: frames, codec, framing, tokens, status codes.

No sockets, no Trio, no clock: the part an SDK author reads.
"""

from .codec import DEFAULT_MAX_FRAME_SIZE, decode, encode
from .errors import ProtocolError
from .frames import (
    PLATFORMS,
    PROTOCOL_VERSION,
    Ack,
    Bind,
    Bound,
    Bye,
    DeviceFrame,
    Error,
    Frame,
    GatewayFrame,
    Hello,
    Ping,
    Pong,
    Push,
    Unbind,
    Unbound,
    Welcome,
    frame_from_map,
    is_valid_id,
)
from .framing import Framer, TcpDecoder, encode_tcp
from .status_codes import CATALOG, Status, StatusCode, channels, lookup
from .tokens import bind_signature, device_token, verify_bind_signature, verify_device_token

__all__ = [
    "CATALOG",
    "DEFAULT_MAX_FRAME_SIZE",
    "PLATFORMS",
    "PROTOCOL_VERSION",
    "Ack",
    "Bind",
    "Bound",
    "Bye",
    "DeviceFrame",
    "Error",
    "Frame",
    "Framer",
    "GatewayFrame",
    "Hello",
    "Ping",
    "Pong",
    "ProtocolError",
    "Push",
    "Status",
    "StatusCode",
    "TcpDecoder",
    "Unbind",
    "Unbound",
    "Welcome",
    "bind_signature",
    "channels",
    "decode",
    "device_token",
    "encode",
    "encode_tcp",
    "frame_from_map",
    "is_valid_id",
    "lookup",
    "verify_bind_signature",
    "verify_device_token",
]

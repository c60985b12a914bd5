"""pushgate's device protocol, sans-IO: frames, codec, framing, tokens, status codes,
the gateway side's connection state machine, and how a connection ends.

No sockets, no Trio, no clock: the part an SDK author reads.
"""

from .closing import ByeReason, CloseCode, ErrorCode, close_code_for, close_code_for_bye
from .codec import DEFAULT_MAX_FRAME_SIZE, decode, encode
from .connection import Rejection, ServerConnection, State, hello_problem
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
    Vendor,
    VendorOk,
    Welcome,
    frame_from_map,
    is_valid_id,
)
from .framing import Framer, TcpDecoder, encode_tcp
from .status_codes import CATALOG, Status, StatusCode, channels, lookup
from .tokens import bind_signature, device_token, verify_bind_signature, verify_device_token
from .vendors import VENDORS, registration_problem

__all__ = [
    "CATALOG",
    "DEFAULT_MAX_FRAME_SIZE",
    "PLATFORMS",
    "PROTOCOL_VERSION",
    "VENDORS",
    "Ack",
    "Bind",
    "Bound",
    "Bye",
    "ByeReason",
    "CloseCode",
    "DeviceFrame",
    "Error",
    "ErrorCode",
    "Frame",
    "Framer",
    "GatewayFrame",
    "Hello",
    "Ping",
    "Pong",
    "ProtocolError",
    "Push",
    "Rejection",
    "ServerConnection",
    "State",
    "Status",
    "StatusCode",
    "TcpDecoder",
    "Unbind",
    "Unbound",
    "Vendor",
    "VendorOk",
    "Welcome",
    "bind_signature",
    "channels",
    "close_code_for",
    "close_code_for_bye",
    "decode",
    "device_token",
    "encode",
    "encode_tcp",
    "frame_from_map",
    "hello_problem",
    "is_valid_id",
    "lookup",
    "registration_problem",
    "verify_bind_signature",
    "verify_device_token",
]

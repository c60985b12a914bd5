"""pushgate's reference device client, in Python on Trio.

Two layers, both usable on their own:

- `open_device_connection(url)` gives a `DeviceConnection`: frames in and out
  over WebSocket (`ws://`, `wss://`) or length-prefixed TCP (`tcp://`,
  `tls://`), nothing more. What an SDK author ports first.
- `Device(DeviceConfig(...))` is a whole device on top of it: hello, heartbeat
  pings, acks (immediate, delayed, batched or never), de-duplication by
  message id, bind/unbind, and reconnection with jittered backoff, except
  after `bye` `replaced` (another connection of the device took over).

The simulator is built on `Device`, in modules of its own (not imported
here): `behaviours`, `fleet` (many devices), `driver` (pushes through the HTTP
API), `oracle` (the delivery verdict), `runner` (`run_sim`), `worker`
(fleets in several processes), `report`, and `sim_cli` (`pushgate sim`).

It imports nothing of the project but `protocol`, so it works against any
gateway that keeps CONTRACT.md.
"""

from .backoff import Backoff
from .config import ACK_MODES, AckMode, DeviceConfig
from .connection import open_device_connection, parse_url
from .device import Device, StopReason
from .errors import ConnectionClosed, GatewayError, HandshakeError, HelloRejected
from .received import ReceivedPush
from .transport import DeviceConnection

__all__ = [
    "ACK_MODES",
    "AckMode",
    "Backoff",
    "ConnectionClosed",
    "Device",
    "DeviceConfig",
    "DeviceConnection",
    "GatewayError",
    "HandshakeError",
    "HelloRejected",
    "ReceivedPush",
    "StopReason",
    "open_device_connection",
    "parse_url",
]

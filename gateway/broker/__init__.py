"""The shared routing layer of a gateway made of many nodes: presence, routes, signals.

`Broker` is what a node needs; `RedisBroker` implements it on Redis. See
docs/scale-out.md for the keys, the messages and the guarantees.
"""

from .base import Broker, BrokerStatistics
from .config import BrokerConfig, is_valid_node_id, new_node_id
from .errors import BrokerUnavailable
from .health import BrokerHealth
from .messages import (
    Bind,
    Broadcast,
    BrokerMessage,
    Config,
    Deliver,
    Inbound,
    Kick,
    MessageError,
    Revoke,
    Unbind,
)
from .model import Claim, FanOut, LiveNode, NodeInfo, Route
from .redis_broker import RedisBroker
from .resync import OVERFLOW, RESUBSCRIBED, SUBSCRIBED, ResyncHook

__all__ = [
    "OVERFLOW",
    "RESUBSCRIBED",
    "SUBSCRIBED",
    "Bind",
    "Broadcast",
    "Broker",
    "BrokerConfig",
    "BrokerHealth",
    "BrokerMessage",
    "BrokerStatistics",
    "BrokerUnavailable",
    "Claim",
    "Config",
    "Deliver",
    "FanOut",
    "Inbound",
    "Kick",
    "LiveNode",
    "MessageError",
    "NodeInfo",
    "RedisBroker",
    "ResyncHook",
    "Revoke",
    "Route",
    "Unbind",
    "is_valid_node_id",
    "new_node_id",
]

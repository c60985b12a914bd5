"""Durable state: apps, devices, messages, deliveries."""

from .base import Store
from .records import (
    App,
    Delivery,
    DeviceInfo,
    Message,
    MsgKeyConflict,
    NewMessage,
    PushOutcome,
    StoreUnavailable,
)
from .sqlite import SqliteStore

__all__ = [
    "App",
    "Delivery",
    "DeviceInfo",
    "Message",
    "MsgKeyConflict",
    "NewMessage",
    "PushOutcome",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
]

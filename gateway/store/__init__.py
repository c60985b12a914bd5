"""Durable state: apps, devices, messages, deliveries."""

from .base import Store
from .records import (
    App,
    Delivery,
    DeviceInfo,
    Message,
    MsgKeyConflict,
    NewMessage,
    NotWaitingForVerify,
    PushOutcome,
    StoreUnavailable,
    Template,
)
from .retention import RETENTION_MS, retention_cutoff
from .sqlite import SqliteStore

__all__ = [
    "RETENTION_MS",
    "App",
    "Delivery",
    "DeviceInfo",
    "Message",
    "MsgKeyConflict",
    "NewMessage",
    "NotWaitingForVerify",
    "PushOutcome",
    "SqliteStore",
    "Store",
    "StoreUnavailable",
    "Template",
    "retention_cutoff",
]

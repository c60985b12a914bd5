"""Durable state: apps, devices, messages, deliveries."""

from .base import Store

# The PostgreSQL store, and choosing a store by its location (pg branch).
from .postgres import (
    PostgresStore,
    SchemaTooNew,
    StoreLocationError,
    store_for,
    store_problem,
    store_where,
)
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
from .vendor_records import (
    ChannelPolicy,
    FallbackClaim,
    FallbackOutcome,
    StoredChannel,
    VendorAnswer,
    VendorRegistration,
)

__all__ = [
    "RETENTION_MS",
    "App",
    "ChannelPolicy",
    "Delivery",
    "DeviceInfo",
    "FallbackClaim",
    "FallbackOutcome",
    "Message",
    "MsgKeyConflict",
    "NewMessage",
    "NotWaitingForVerify",
    "PostgresStore",
    "PushOutcome",
    "SchemaTooNew",
    "SqliteStore",
    "Store",
    "StoreLocationError",
    "StoreUnavailable",
    "StoredChannel",
    "Template",
    "VendorAnswer",
    "VendorRegistration",
    "retention_cutoff",
    "store_for",
    "store_problem",
    "store_where",
]

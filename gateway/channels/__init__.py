"""Vendor push channels (CONTRACT §6): APNs, FCM, Huawei, Xiaomi, OPPO and vivo.

A self-contained library: credentials (parsed, masked, encrypted at rest), one
adapter per vendor behind the `Channel` protocol, and a `ChannelDirectory`
that sends through them with retries, a concurrency bound and a circuit
breaker per (app, vendor). Every answer becomes a `SendResult` holding the
seeds' code. See docs/vendor-channels.md.
"""

from .base import Channel
from .credentials import (
    ApnsCredentials,
    Credentials,
    FcmCredentials,
    HuaweiCredentials,
    OppoCredentials,
    ServiceAccount,
    VivoCredentials,
    XiaomiCredentials,
    masked_view,
    parse_credentials,
)
from .directory import (
    ChannelDirectory,
    ChannelStatistics,
    GuardedChannel,
    GuardSettings,
    open_channel,
)
from .errors import VENDORS, ChannelConfigError
from .http import HttpOptions
from .keyring import CredentialCipher, KeyringError, NoChannelKey, generate_key
from .message import VendorDelivery, VendorMessage
from .registration import MAX_TOKEN_LENGTH, token_tail, validate_registration
from .resilience import BreakerState, Bulkhead, CircuitBreaker, RetryPolicy
from .result import RAW_LIMIT, SendResult
from .secret import Secret

__all__ = [
    "MAX_TOKEN_LENGTH",
    "RAW_LIMIT",
    "VENDORS",
    "ApnsCredentials",
    "BreakerState",
    "Bulkhead",
    "Channel",
    "ChannelConfigError",
    "ChannelDirectory",
    "ChannelStatistics",
    "CircuitBreaker",
    "CredentialCipher",
    "Credentials",
    "FcmCredentials",
    "GuardSettings",
    "GuardedChannel",
    "HttpOptions",
    "HuaweiCredentials",
    "KeyringError",
    "NoChannelKey",
    "OppoCredentials",
    "RetryPolicy",
    "Secret",
    "SendResult",
    "ServiceAccount",
    "VendorDelivery",
    "VendorMessage",
    "VivoCredentials",
    "XiaomiCredentials",
    "generate_key",
    "masked_view",
    "open_channel",
    "parse_credentials",
    "token_tail",
    "validate_registration",
]

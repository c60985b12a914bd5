"""`DeviceConfig`: who a simulated device is, where it connects and how it behaves."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal, get_args

from protocol import DEFAULT_MAX_FRAME_SIZE, device_token

AckMode = Literal["immediate", "delayed", "batched", "never"]
ACK_MODES: tuple[str, ...] = get_args(AckMode)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfig:
    """Settings of one device.

    Identity: `app`, `device_id`, `platform` ("android" or "ios"; anything else
    is sent as is, so a gateway's `bad_hello` can be tested) and either the
    app's `secret` (the token and bind signatures are computed from it) or an
    explicit `token`.

    Acks (`ack_mode`):
      - "immediate": one `ack` frame per push, as soon as it arrives;
      - "delayed": each push acked `ack_delay` seconds after it arrived;
      - "batched": one `ack` carrying up to `ack_batch_size` ids, sent when the
        batch is full or `ack_batch_interval` after its first id;
      - "never": no automatic acks (`Device.ack()` still works).
    Duplicates are acked again: the gateway resends until it sees an ack.
    At most `ack_queue_size` ids wait for their ack; when that is full the
    device stops reading until acks go out (no unbounded buffering).

    Keep-alive: a `ping` every `welcome.heartbeat / 2` seconds when
    `send_pings` (turn it off to test the gateway's idle timeout); with pings
    on, silence from the gateway for 2 x heartbeat + 1 s counts as a dead
    connection.

    Reconnects (`reconnect`): jittered exponential backoff from `backoff_base`
    to `backoff_cap` seconds, reset after each `welcome`.

    Fail-over (`fallback_urls`): other nodes of the same gateway. A device
    whose connection the gateway side ended (reset, EOF, `bye`) or that could
    not connect (refused, timeout) tries the next address of `url`,
    `*fallback_urls`, round robin, after the same backoff. Its own `drop()`
    (a flaky network) keeps the address.

    `history_limit` bounds `Device.received` (oldest entries are dropped and
    de-duplication then only covers the newest `history_limit` ids).
    """

    url: str
    app: str
    device_id: str
    platform: str = "android"
    secret: str | None = None
    token: str | None = None

    ack_mode: AckMode = "immediate"
    ack_delay: float = 1.0
    ack_batch_size: int = 100
    ack_batch_interval: float = 0.1
    ack_queue_size: int = 1024

    send_pings: bool = True
    reconnect: bool = True
    backoff_base: float = 0.1
    backoff_cap: float = 5.0

    connect_timeout: float = 10.0
    write_timeout: float = 10.0
    close_timeout: float = 2.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    history_limit: int = 100_000
    ssl_context: ssl.SSLContext | None = None
    local_address: str | None = None
    fallback_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.secret is None and self.token is None:
            raise ValueError("a device needs the app's secret or an explicit token")
        if self.ack_mode not in ACK_MODES:
            raise ValueError(f"ack_mode must be one of {ACK_MODES}, not {self.ack_mode!r}")
        if self.ack_delay < 0 or self.ack_batch_interval < 0:
            raise ValueError("ack delays must not be negative")
        if self.ack_batch_size < 1 or self.ack_queue_size < 1 or self.history_limit < 1:
            raise ValueError("ack_batch_size, ack_queue_size and history_limit must be >= 1")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise ValueError("backoff needs 0 < backoff_base <= backoff_cap")

    @property
    def urls(self) -> tuple[str, ...]:
        """Every address of the device, in fail-over order."""
        return (self.url, *self.fallback_urls)

    @property
    def hello_token(self) -> str:
        """The token sent in `hello`: the explicit one, else computed from the secret."""
        if self.token is not None:
            return self.token
        assert self.secret is not None
        return device_token(self.secret, self.app, self.device_id)

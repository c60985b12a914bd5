"""Runtime settings of one gateway process."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.vendor_settings import FallbackSettings, VendorSettings


@dataclass(frozen=True, slots=True)
class AppDeclaration:
    app_id: str
    api_key: str
    secret: str

    @classmethod
    def parse(cls, text: str) -> AppDeclaration:
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError("expected APP_ID:API_KEY:SECRET")
        return cls(*parts)


@dataclass(frozen=True, slots=True)
class Settings:
    db: str = "./pushgate.db"
    host: str = "127.0.0.1"
    api_port: int = 8080
    ws_port: int = 8081
    tcp_port: int = 8082
    heartbeat: int = 30
    hello_timeout: float = 10.0
    max_frame_size: int = 65_536
    max_payload: int = 4096
    outbox_limit: int = 1024
    # A device's backlog is read this many messages at a time (gateway/backlog.py).
    backlog_page: int = 100
    # Message ids a connection may ack per second (gateway/acks.py); past it its
    # socket is read more slowly.
    ack_rate: float = 10_000.0
    send_timeout: float = 10.0
    shutdown_grace: float = 10.0
    apps: tuple[AppDeclaration, ...] = field(default_factory=tuple)
    verify_apps: tuple[str, ...] = field(default_factory=tuple)
    ws_origins: frozenset[str] | None = None
    rate_limit: float = 2000.0  # /v1 calls per second per app (token bucket); 0 = no limit
    rate_burst: int = 4000  # bucket size: calls an app may make at once
    purge_interval: float = 60.0  # seconds between 30-day retention purges
    # Device connections (WebSocket + TCP) held at once; past it new ones are
    # refused politely (see gateway/limits.py). Below `ulimit -n` on purpose.
    max_connections: int = 19_000
    # A cap on the SQLite file in pages (PRAGMA max_page_count); None = no cap.
    # Past it pushes answer 503 store_unavailable, as on a full disk.
    max_db_pages: int | None = None
    # PEM files: with both, the WebSocket, TCP and HTTP listeners speak TLS.
    tls_cert: str | None = None
    tls_key: str | None = None
    # The HTTP API's edges (gateway/api/edge.py, gateway/api/http_server.py).
    max_body: int = 16 * 1024 * 1024  # bytes of a /v1/push/multiple body
    max_api_connections: int = 512  # HTTP connections held at once, apart from devices'
    http_idle_timeout: float = 5.0  # a request head must arrive within this, and between requests
    http_body_timeout: float = 30.0  # a whole request body must arrive within this
    # Many nodes (gateway/cluster.py, docs/scale-out.md): the broker's redis:// URL
    # (None: one node), its key prefix, the sweep of unacked deliveries, this
    # node's ID (None: made up), and SO_REUSEPORT listeners (serve --workers).
    broker: str | None = None
    broker_prefix: str = "pushgate:"
    sweep_interval: float = 3.0
    node_id: str | None = None
    reuse_port: bool = False
    # Vendor channels (gateway/vendor_channels.py) and the fallback sender (gateway/fallback.py).
    vendor: VendorSettings = field(default_factory=VendorSettings)
    fallback: FallbackSettings = field(default_factory=FallbackSettings)

    @property
    def idle_timeout(self) -> float:
        return 2.0 * self.heartbeat

"""Runtime settings of one gateway process."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    send_timeout: float = 10.0
    shutdown_grace: float = 10.0
    apps: tuple[AppDeclaration, ...] = field(default_factory=tuple)
    verify_apps: tuple[str, ...] = field(default_factory=tuple)
    ws_origins: frozenset[str] | None = None

    @property
    def idle_timeout(self) -> float:
        return 2.0 * self.heartbeat

"""What the API's handlers share: the hub, the store, the settings and the clock."""

from dataclasses import dataclass, field

from fastapi import Request

from gateway.clock import Clock
from gateway.hub import Hub
from gateway.settings import Settings
from gateway.store import App, Store

from .errors import ApiError
from .ratelimit import RateLimiter, retry_after_header


@dataclass
class ApiContext:
    hub: Hub
    store: Store
    settings: Settings
    clock: Clock
    # The device WebSocket listener's base URL (ws://host:port) once it is
    # bound, for the console; the server fills it in (port 0 picks a port).
    ws_url: str | None = None
    _apps_by_key: dict[str, App] = field(default_factory=dict)
    limiter: RateLimiter | None = None

    async def authenticate(self, request: Request) -> App:
        """The app whose bearer API key the request carries (a FastAPI dependency)."""
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "unauthorized",
                "missing bearer API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        key = key.strip()
        app = self._apps_by_key.get(key)
        if app is None:
            app = await self.store.app_by_api_key(key)
            if app is None:
                raise ApiError(
                    401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": "Bearer"}
                )
            if len(self._apps_by_key) > 10_000:
                self._apps_by_key.clear()
            self._apps_by_key[key] = app
            self.hub.remember_app(app)
        self.check_rate(app)
        return app

    def check_rate(self, app: App) -> None:
        """Take one token from the app's bucket, or answer 429 rate_limited."""
        limiter = self.limiter
        wait = 0.0 if limiter is None else limiter.take(app.app_id)
        if limiter is None or wait <= 0:
            return
        self.hub.metrics.rate_limited.inc()
        raise ApiError(
            429,
            "rate_limited",
            f"over {limiter.rate:g} calls per second (burst {limiter.burst}) for this app;"
            " retry after the Retry-After seconds",
            headers={"Retry-After": retry_after_header(wait)},
        )

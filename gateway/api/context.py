"""What the API's handlers share: the hub, the store, the settings and the clock."""

from dataclasses import dataclass, field

from fastapi import Request

from gateway.clock import Clock
from gateway.hub import Hub
from gateway.settings import Settings
from gateway.store import App, Store

from .errors import ApiError


@dataclass
class ApiContext:
    hub: Hub
    store: Store
    settings: Settings
    clock: Clock
    _apps_by_key: dict[str, App] = field(default_factory=dict)

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
        return app

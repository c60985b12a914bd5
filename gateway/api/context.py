"""What the API's handlers share (the hub, the store, the settings, the clock), and the
FastAPI dependencies that hand it to them: `Ctx`, `CurrentApp` and `json_body`.

Handlers are plain module-level functions; `create_api` puts the context on
`app.state`, and each request finds it there.
"""

from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar, cast, get_args, get_origin

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from gateway.broker import BrokerUnavailable
from gateway.clock import Clock
from gateway.cluster import Cluster
from gateway.hub import Hub
from gateway.settings import Settings
from gateway.store import App, Store
from gateway.vendor_channels import VendorChannels

from .body import read_text
from .errors import ApiError, validation_error
from .jsonbody import ElementHook, NotJson, parse_json
from .ratelimit import RateLimiter, retry_after_header

# Every body but /v1/push/multiple's: well above the largest valid one (a
# template of 2 x 65,536 characters, each \u-escaped in JSON, is ~800 KB).
SMALL_BODY_LIMIT = 1024 * 1024
MAX_CACHED_KEYS = 10_000

M = TypeVar("M", bound=BaseModel)


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
    vendor: VendorChannels | None = None  # the vendor channels (api/channels.py)
    # Many nodes: this node's ID, and its cluster (None: one node, no broker).
    node_id: str = "local"
    started_ms: int = 0
    cluster: Cluster | None = None

    def unreachable(self) -> list[str]:
        """What this node cannot reach now: "store", "broker" (for /healthz)."""
        problems: list[str] = []
        if not getattr(self.store, "reachable", True):
            problems.append("store")
        if self.cluster is not None and not self.cluster.broker.health.ok:
            problems.append("broker")
        return problems

    async def authenticate(self, header: str) -> App:
        """The app whose bearer API key `header` (Authorization) carries; then its rate."""
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
            if len(self._apps_by_key) > MAX_CACHED_KEYS:
                self._apps_by_key.clear()
            self._apps_by_key[key] = app
            self.hub.remember_app(app)
        await self.check_rate(app)
        return app

    async def check_rate(self, app: App) -> None:
        """Take one token from the app's bucket (shared by all nodes when there is a
        broker; this node's own while the broker is down), or answer 429 rate_limited."""
        limiter = self.limiter
        wait = 0.0
        if limiter is not None and limiter.enabled:
            wait = await self._shared_wait(app.app_id, limiter)
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

    async def _shared_wait(self, app_id: str, limiter: RateLimiter) -> float:
        """The shared bucket's answer; this node's own bucket while the broker is down
        (pushes go on, each node limiting its own share, rather than wait for Redis)."""
        if self.cluster is not None and self.cluster.broker.health.ok:
            try:
                return await self.cluster.broker.take_token(app_id, limiter.rate, limiter.burst)
            except BrokerUnavailable:
                pass
        return limiter.take(app_id)

    def body_limit(self, large: bool) -> int:
        return self.settings.max_body if large else min(self.settings.max_body, SMALL_BODY_LIMIT)


def api_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.ctx)


Ctx = Annotated[ApiContext, Depends(api_context)]


async def current_app(request: Request, ctx: Ctx) -> App:
    """The calling app, from the Authorization header alone: no body is read before it."""
    return await ctx.authenticate(request.headers.get("authorization", ""))


CurrentApp = Annotated[App, Depends(current_app)]


def json_body(model: type[M], *, large: bool = False) -> Any:
    """A dependency giving the request body as `model`: authenticated first, then read
    within the route's size and time limits, decoded in slices, validated strictly."""

    members = frozenset(model.model_fields)
    element = _element_validator(model)

    async def dependency(request: Request, ctx: Ctx, app: CurrentApp) -> M:
        text = await read_text(
            request, limit=ctx.body_limit(large), timeout=ctx.settings.http_body_timeout
        )
        try:
            data = await parse_json(text, members=members, element=element)
        except NotJson as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise validation_error(exc.errors()) from None

    dependency.__name__ = f"{model.__name__}_body"
    return Depends(dependency)


def _element_validator(model: type[BaseModel]) -> ElementHook:
    """Validate each element of a list-of-models field (`targets`) as it is decoded,
    so a bad one fails at once and a good one is kept as its small model."""
    item_models: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        if get_origin(info.annotation) is not list:
            continue
        (item,) = get_args(info.annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            item_models[name] = item

    def validate(key: str, index: int, value: Any) -> Any:
        item_model = item_models.get(key)
        if item_model is None:
            return value
        try:
            return item_model.model_validate(value)
        except ValidationError as exc:
            errors = [{**e, "loc": (key, index, *e["loc"])} for e in exc.errors()]
            raise validation_error(errors) from None

    return validate


def body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a body that json_body reads (app.py adds the schemas)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}

"""Operations: health and metrics (no auth), and the status-code catalog."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.metrics import CONTENT_TYPE, with_label
from protocol.status_codes import CATALOG, channels

from .context import Ctx, CurrentApp
from .errors import AUTHENTICATED, ApiError, error_responses


class StatusCodeItem(BaseModel):
    channel: str
    code: int
    name: str
    description: str


class StatusCodeCollection(BaseModel):
    items: list[StatusCodeItem]
    next_cursor: str | None


_ALL_CODES = [
    {"channel": s.channel, "code": s.code, "name": s.name, "description": s.description}
    for s in CATALOG
]

router = APIRouter(tags=["operations"])


@router.get("/healthz", responses={503: {"description": "the store or the broker is unreachable"}})
async def healthz(ctx: Ctx) -> Any:
    """200 while this node reaches its store (and broker); 503 naming which it cannot."""
    unreachable = ctx.unreachable()
    if unreachable:
        body = {"status": "unavailable", "unreachable": unreachable, "node": ctx.node_id}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    return {"status": "ok", "online": ctx.hub.online_count, "node": ctx.node_id}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
)
async def prometheus_metrics(ctx: Ctx) -> Response:
    """Prometheus metrics of this gateway process (text exposition format)."""
    text = ctx.hub.metrics.render()
    if ctx.cluster is not None:  # many nodes: every sample names its node
        text = with_label(text, "node", ctx.node_id)
    return Response(content=text, media_type=CONTENT_TYPE)


@router.get(
    "/v1/status-codes",
    response_model=StatusCodeCollection,
    responses=error_responses(*AUTHENTICATED),
)
async def status_codes(
    app: CurrentApp,
    channel: Annotated[
        str | None,
        Query(description="Only this channel: " + ", ".join(channels()) + "."),
    ] = None,
) -> dict[str, Any]:
    """Every status code of the catalog: the common codes, then each vendor channel's."""
    if channel is None:
        return {"items": _ALL_CODES, "next_cursor": None}
    if channel not in channels():
        raise ApiError(
            400,
            "invalid_request",
            f"channel: must be one of {', '.join(channels())}",
            field="channel",
        )
    return {"items": [c for c in _ALL_CODES if c["channel"] == channel], "next_cursor": None}

"""`GET /v1/nodes`: the live nodes of the gateway, with the calling app's devices online
on each (CONTRACT.md section 7). A single node without a broker lists itself."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from gateway.broker import BrokerUnavailable

from .context import Ctx, CurrentApp
from .errors import AUTHENTICATED, ApiError, error_responses

router = APIRouter(tags=["operations"])


@router.get("/v1/nodes", responses=error_responses(*AUTHENTICATED))
async def list_nodes(app: CurrentApp, ctx: Ctx) -> dict[str, Any]:
    """Live nodes (liveness key not expired) and the app's devices online on each."""
    cluster = ctx.cluster
    if cluster is None:
        here = {
            "node_id": ctx.node_id,
            "host": ctx.settings.host,
            "ports": {},
            "pid": os.getpid(),
            "started": ctx.started_ms,
            "last_seen": ctx.clock.now_ms(),
            "online": ctx.hub.online_in(app.app_id),
        }
        return {"nodes": [here]}
    try:
        live = await cluster.broker.live_nodes(app.app_id)
    except BrokerUnavailable as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            f"the broker cannot be reached: {exc}",
            headers={"Retry-After": "1"},
        ) from None
    nodes = [
        {
            "node_id": n.info.node_id,
            "host": n.info.host,
            "ports": dict(n.info.ports),
            "pid": n.info.pid,
            "started": n.info.started_ms,
            "last_seen": n.last_seen_ms,
            "online": n.online or 0,
        }
        for n in live
    ]
    return {"nodes": nodes}

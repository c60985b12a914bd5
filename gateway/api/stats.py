"""`GET /v1/stats`: the console's live numbers (a pushgate addition beyond CONTRACT.md).

App-scoped like every /v1 call: devices of this app online now, pushes it
created since 00:00 UTC today (by the gateway's clock), and the share of those
that are Acked (broadcasts left out; null when there are none).
"""

from typing import Any

from fastapi import APIRouter

from .context import Ctx, CurrentApp
from .errors import AUTHENTICATED, error_responses

DAY_MS = 86_400_000

router = APIRouter(tags=["console"], responses=error_responses(*AUTHENTICATED))


@router.get("/v1/stats")
async def stats(ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    now = ctx.clock.now_ms()
    pushes = await ctx.store.push_stats(app.app_id, now - now % DAY_MS)
    share = pushes.acked_share
    return {
        "app_id": app.app_id,
        "devices_online": ctx.hub.online_in(app.app_id),
        "pushes_today": pushes.pushes,
        "acked_share": None if share is None else round(share, 4),
    }

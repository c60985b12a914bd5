"""Operations: health (no auth)."""

from typing import Any

from fastapi import APIRouter

from .context import ApiContext


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "online": ctx.hub.online_count}

    return api

"""Reading messages: push details (and, later, the message list and search)."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.store import App

from .context import ApiContext
from .errors import ApiError
from .views import message_details


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["messages"])
    AppDep = Annotated[App, Depends(ctx.authenticate)]

    @api.get("/v1/messages/{message_id}")
    async def get_message(message_id: str, app: AppDep) -> dict[str, Any]:
        found = await ctx.store.get_message(app.app_id, message_id)
        if found is None:
            raise ApiError(404, "not_found", f"no message {message_id[:128]!r} in this app")
        return message_details(*found)

    return api

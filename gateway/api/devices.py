"""Devices, users and bindings."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.store import App

from .context import ApiContext
from .errors import ApiError
from .models import BindingBody, Id
from .views import device_view


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["devices"])
    AppDep = Annotated[App, Depends(ctx.authenticate)]

    def online(app_id: str, device_id: str) -> bool:
        return ctx.hub.is_online(app_id, device_id)

    @api.post("/v1/bindings")
    async def create_binding(body: BindingBody, app: AppDep) -> dict[str, Any]:
        await ctx.hub.bind_and_deliver(app.app_id, body.device_id, body.user_id)
        return {"device_id": body.device_id, "user_id": body.user_id}

    @api.delete("/v1/bindings/{device_id:path}")
    async def delete_binding(device_id: Id, app: AppDep) -> dict[str, Any]:
        old = await ctx.hub.unbind(app.app_id, device_id)
        return {"device_id": device_id, "user_id": None, "previous_user_id": old}

    @api.get("/v1/devices/{device_id:path}")
    async def get_device(device_id: Id, app: AppDep) -> dict[str, Any]:
        info = await ctx.store.get_device(app.app_id, device_id)
        if info is None:
            raise ApiError(404, "not_found", f"no device {device_id!r} in this app")
        return device_view(info, online(app.app_id, device_id))

    @api.get("/v1/users/{user_id:path}/devices")
    async def get_user_devices(user_id: Id, app: AppDep) -> dict[str, Any]:
        devices = await ctx.store.user_devices(app.app_id, user_id)
        return {
            "items": [device_view(d, online(app.app_id, d.device_id)) for d in devices],
            "next_cursor": None,
        }

    return api

"""Devices, users and bindings."""

from typing import Annotated, Any

from fastapi import APIRouter

from gateway.store import DeviceInfo

from .context import Ctx, CurrentApp, body_openapi, json_body
from .errors import AUTHENTICATED, ApiError, error_responses
from .models import BindingBody, Id
from .views import device_view

router = APIRouter(tags=["devices"], responses=error_responses(*AUTHENTICATED))


@router.post(
    "/v1/bindings", openapi_extra=body_openapi(BindingBody), responses=error_responses(408, 413)
)
async def create_binding(
    ctx: Ctx, app: CurrentApp, body: Annotated[BindingBody, json_body(BindingBody)]
) -> dict[str, Any]:
    await ctx.hub.bind_and_deliver(app.app_id, body.device_id, body.user_id)
    return {"device_id": body.device_id, "user_id": body.user_id}


@router.delete("/v1/bindings/{device_id:path}")
async def delete_binding(device_id: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    old = await ctx.hub.unbind(app.app_id, device_id)
    return {"device_id": device_id, "user_id": None, "previous_user_id": old}


@router.get("/v1/devices/{device_id:path}", responses=error_responses(404))
async def get_device(device_id: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    info = await ctx.store.get_device(app.app_id, device_id)
    registration = await ctx.store.get_vendor_registration(app.app_id, device_id)
    if info is None and registration is None:
        raise ApiError(404, "not_found", f"no device {device_id!r} in this app")
    if info is None:  # registered by the backend, never connected yet
        info = DeviceInfo(device_id, None, None, None)
    return device_view(info, ctx.hub.is_online(app.app_id, device_id), registration)


@router.get("/v1/users/{user_id:path}/devices")
async def get_user_devices(user_id: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    devices = await ctx.store.user_devices(app.app_id, user_id)
    return {
        "items": [device_view(d, ctx.hub.is_online(app.app_id, d.device_id)) for d in devices],
        "next_cursor": None,
    }

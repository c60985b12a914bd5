"""Vendor channels (CONTRACT §6): an app's credentials per vendor, its fallback
policy, and a device's vendor registration.

Credentials are validated field by field (a 400 names the field, never its
value), stored encrypted, and listed with every secret masked. With no
encryption key configured they are refused with 503 `channel_key_missing`,
whose message says how to configure one.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from gateway.channels import ChannelConfigError, KeyringError, parse_credentials, token_tail
from gateway.vendor_channels import ChannelKeyMissing, VendorChannels
from protocol import VENDORS, registration_problem

from .body import read_text
from .context import Ctx, CurrentApp, body_openapi, json_body
from .errors import AUTHENTICATED, ApiError, error_responses
from .jsonbody import NotJson, parse_json
from .models import MAX_EXPIRED_SECONDS, Id, _Body

router = APIRouter(tags=["vendor channels"], responses=error_responses(*AUTHENTICATED))


class ChannelPolicyBody(_Body):
    fallback_after_seconds: Annotated[int, Field(ge=0, le=MAX_EXPIRED_SECONDS)]


class VendorRegistrationBody(_Body):
    vendor: str
    token: str


CHANNEL_MODELS: tuple[type[BaseModel], ...] = (ChannelPolicyBody, VendorRegistrationBody)


def _vendor(ctx: Ctx) -> VendorChannels:
    if ctx.vendor is None:  # an API without a gateway (tests of the API alone)
        raise ApiError(503, "channels_unavailable", "vendor channels are not running")
    return ctx.vendor


def _check_vendor(vendor: str) -> str:
    if vendor not in VENDORS:
        raise ApiError(
            400,
            "invalid_request",
            f"vendor: unknown vendor; expected one of {', '.join(VENDORS)}",
            field="vendor",
        )
    return vendor


def _key_missing(exc: Exception) -> ApiError:
    if isinstance(exc, ChannelKeyMissing):
        return ApiError(503, "channel_key_missing", str(exc))
    return ApiError(503, "channel_key_invalid", str(exc))


@router.put("/v1/channels/{vendor}", responses=error_responses(400, 408, 413, 503))
async def put_channel(vendor: str, request: Request, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    """Set the app's credentials for `vendor` (its fields: docs/vendor-channels.md)."""
    _check_vendor(vendor)
    channels = _vendor(ctx)
    text = await read_text(
        request, limit=ctx.body_limit(False), timeout=ctx.settings.http_body_timeout
    )
    try:
        fields = await parse_json(text)
    except NotJson as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    try:
        credentials = parse_credentials(vendor, fields)
    except ChannelConfigError as exc:
        raise ApiError(
            400, "invalid_request", f"{exc.field}: {exc.message}", field=exc.field
        ) from None
    try:
        created = await channels.put(app.app_id, credentials)
        (view,) = [c for c in await channels.masked(app.app_id) if c["vendor"] == vendor]
    except (ChannelKeyMissing, KeyringError) as exc:
        raise _key_missing(exc) from None
    return {**view, "created": created}


@router.get("/v1/channels", responses=error_responses(503))
async def list_channels(ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    try:
        items = await _vendor(ctx).masked(app.app_id)
    except (ChannelKeyMissing, KeyringError) as exc:
        raise _key_missing(exc) from None
    return {"items": items, "next_cursor": None}


@router.get("/v1/channels/{vendor}", responses=error_responses(400, 404, 503))
async def get_channel(vendor: str, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    _check_vendor(vendor)
    try:
        found = [c for c in await _vendor(ctx).masked(app.app_id) if c["vendor"] == vendor]
    except (ChannelKeyMissing, KeyringError) as exc:
        raise _key_missing(exc) from None
    if not found:
        raise ApiError(404, "not_found", f"no {vendor} channel in this app")
    return found[0]


@router.delete("/v1/channels/{vendor}", responses=error_responses(400, 404))
async def delete_channel(vendor: str, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    _check_vendor(vendor)
    if not await _vendor(ctx).delete(app.app_id, vendor):
        raise ApiError(404, "not_found", f"no {vendor} channel in this app")
    return {"vendor": vendor, "deleted": True}


@router.put(
    "/v1/channel-policy",
    openapi_extra=body_openapi(ChannelPolicyBody),
    responses=error_responses(400, 408, 413),
)
async def put_channel_policy(
    ctx: Ctx, app: CurrentApp, body: Annotated[ChannelPolicyBody, json_body(ChannelPolicyBody)]
) -> dict[str, Any]:
    await ctx.store.put_channel_policy(app.app_id, body.fallback_after_seconds)
    return {"fallback_after_seconds": body.fallback_after_seconds}


@router.get("/v1/channel-policy")
async def get_channel_policy(ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    policy = await ctx.store.get_channel_policy(app.app_id)
    return {"fallback_after_seconds": policy.fallback_after_seconds}


@router.put(
    "/v1/devices/{device_id:path}/vendor",
    openapi_extra=body_openapi(VendorRegistrationBody),
    responses=error_responses(400, 408, 413),
)
async def put_device_vendor(
    device_id: Id,
    ctx: Ctx,
    app: CurrentApp,
    body: Annotated[VendorRegistrationBody, json_body(VendorRegistrationBody)],
) -> dict[str, Any]:
    problem = registration_problem(body.vendor, body.token)
    if problem is not None:
        field, message = problem
        raise ApiError(400, "invalid_request", f"{field}: {message}", field=field)
    await ctx.store.set_vendor_registration(app.app_id, device_id, body.vendor, body.token)
    return {"device_id": device_id, "vendor": body.vendor, "vendor_token": token_tail(body.token)}


@router.delete("/v1/devices/{device_id:path}/vendor", responses=error_responses(404))
async def delete_device_vendor(device_id: Id, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    if not await ctx.store.delete_vendor_registration(app.app_id, device_id):
        raise ApiError(404, "not_found", f"device {device_id!r} has no vendor registration")
    return {"device_id": device_id, "vendor": None}

"""Moderation: verifying the pushes of apps that require it, and revoking messages."""

from typing import Annotated, Any

from fastapi import APIRouter

from gateway.store import NotWaitingForVerify
from gateway.timefmt import iso_ms

from .context import Ctx, CurrentApp, body_openapi, json_body
from .errors import AUTHENTICATED, ApiError, error_responses
from .models import VerifyBody


def _not_found(message_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no message {message_id[:128]!r} in this app")


router = APIRouter(tags=["moderation"], responses=error_responses(*AUTHENTICATED, 404))


@router.post(
    "/v1/messages/{message_id}/verify",
    openapi_extra=body_openapi(VerifyBody),
    responses=error_responses(408, 409, 413),
)
async def verify_message(
    message_id: str, ctx: Ctx, app: CurrentApp, body: Annotated[VerifyBody, json_body(VerifyBody)]
) -> dict[str, Any]:
    """Approve (the message enters the normal flow now) or reject (it never
    goes anywhere) a message waiting for verification (status -1)."""
    try:
        outcome = await ctx.hub.verify(app.app_id, message_id, body.approve)
    except NotWaitingForVerify as exc:
        raise ApiError(409, "not_waiting_for_verify", str(exc)) from None
    if outcome is None:
        raise _not_found(message_id)
    message = outcome.message
    return {
        "message_id": message.message_id,
        "verification": message.verification,
        "status": message.status,
        "modified_at": iso_ms(message.modified_at),
    }


@router.delete("/v1/messages/{message_id}")
async def revoke_message(message_id: str, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    """Revoke: every copy not yet acked is stopped, queued ones included, and
    the message is never sent again (idempotent; `stopped` counts this call's)."""
    revoked = await ctx.hub.revoke(app.app_id, message_id)
    if revoked is None:
        raise _not_found(message_id)
    message, stopped = revoked
    return {"message_id": message.message_id, "revoked": True, "stopped": len(stopped)}

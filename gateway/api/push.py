"""Pushing: every push type stores its messages, then routes them to live sessions."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.store import App, NewMessage, PushOutcome
from protocol import Push, encode

from .context import ApiContext
from .errors import ApiError
from .models import SimplePushBody
from .views import push_answer

# The payload limit counts the whole encoded `push` frame, with IDs of the
# length the gateway generates and 13-digit timestamps.
_ID_PLACEHOLDER = "0" * 26
_TIME_PLACEHOLDER = 1_700_000_000_000


def encoded_push_size(item: NewMessage) -> int:
    frame = Push(
        id=_ID_PLACEHOLDER,
        msg_key=item.msg_key or _ID_PLACEHOLDER,
        push_type=item.push_type,
        title=item.title,
        content=item.content,
        ext=item.ext,
        created=_TIME_PLACEHOLDER,
        expires=_TIME_PLACEHOLDER,
    )
    return len(encode(frame))


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["push"])
    AppDep = Annotated[App, Depends(ctx.authenticate)]

    def check_payload(item: NewMessage) -> None:
        size = encoded_push_size(item)
        if size > ctx.settings.max_payload:
            raise ApiError(
                413,
                "payload_too_large",
                f"the encoded push frame would be {size} bytes; the limit is"
                f" {ctx.settings.max_payload}",
            )

    async def store_and_route(app: App, items: list[NewMessage]) -> list[PushOutcome]:
        for item in items:
            check_payload(item)
        outcomes = await ctx.store.insert_messages(app, items)
        ctx.hub.route(app.app_id, outcomes)
        return outcomes

    @api.post("/v1/push/simple")
    async def push_simple(body: SimplePushBody, app: AppDep) -> dict[str, Any]:
        item = NewMessage(
            push_type="simple",
            delivery_type=body.delivery_type,
            target_id=body.target_id,
            title=body.title,
            content=body.content,
            ext=body.ext,
            msg_key=body.msg_key,
            expired_seconds=body.expired_seconds,
        )
        (outcome,) = await store_and_route(app, [item])
        return push_answer(outcome)

    return api

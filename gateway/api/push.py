"""Pushing: every push type stores its messages through the hub, which routes them.

`simple`, `template` and `multiple` store one row per target and go to the
target's devices online now; `broadcast` stores one row and opens a delivery
per device as devices are seen (online now, or at their `hello`).
"""

from dataclasses import dataclass
from typing import Annotated, Any

import trio
from fastapi import APIRouter

from gateway.store import App, MsgKeyConflict, NewMessage, PushOutcome
from gateway.timefmt import iso_ms

from .context import Ctx, CurrentApp, body_openapi, json_body
from .errors import AUTHENTICATED, ApiError, error_responses
from .frame_size import ext_size, push_frame_size
from .models import (
    BroadcastPushBody,
    MultiplePushBody,
    SimplePushBody,
    TemplatePushBody,
)
from .plain import MultipleFields, SimpleFields
from .templates import CompiledTemplate, load_template
from .views import push_answer

# A broadcast has no target: its row's target_id is "" (never a valid ID, so
# its msg_key can collide with no other push's) and its delivery_type is the
# platform it is limited to, or "all".
BROADCAST_TARGET = ""
BROADCAST_ALL = "all"

# A multiple push renders up to 1000 targets: let devices run between slices
# of that work (counted in template parts rendered).
_RENDER_SLICE = 20_000


@dataclass(frozen=True, slots=True)
class Options:
    """What every push of one call shares: expiry and `ext` (with its encoded size)."""

    ext: dict[str, str]
    expired_seconds: int
    ext_bytes: int

    @classmethod
    def of(cls, ext: dict[str, str], expired_seconds: int) -> "Options":
        return cls(ext, expired_seconds, ext_size(ext))


def new_message(
    ctx: Ctx,
    options: Options,
    *,
    push_type: str,
    delivery_type: str,
    target_id: str,
    text: tuple[str, str],
    msg_key: str | None,
    template: str | None = None,
    platform: str | None = None,
    field: str | None = None,
) -> NewMessage:
    """The one place a push becomes a NewMessage, checked against the payload limit."""
    title, content = text
    size = push_frame_size(msg_key, push_type, title, content, options.ext_bytes)
    if size > ctx.settings.max_payload:
        where = f"{field}: " if field else ""
        raise ApiError(
            413,
            "payload_too_large",
            f"{where}the encoded push frame would be {size} bytes; the limit is"
            f" {ctx.settings.max_payload}",
            field=field,
        )
    return NewMessage(
        push_type=push_type,
        delivery_type=delivery_type,
        target_id=target_id,
        title=title,
        content=content,
        ext=options.ext,
        msg_key=msg_key,
        expired_seconds=options.expired_seconds,
        template=template,
        platform=platform,
    )


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{field}: {message}", field=field)


router = APIRouter(tags=["push"], responses=error_responses(*AUTHENTICATED, 408, 409, 413))


# The two hot routes are also served by lean.py (without FastAPI, on checked
# plain fields); these functions document them and serve them where lean.py
# is not in front (an ASGI client on create_api alone). Both share the work.


@router.post("/v1/push/simple", openapi_extra=body_openapi(SimplePushBody))
async def push_simple(
    ctx: Ctx, app: CurrentApp, body: Annotated[SimplePushBody, json_body(SimplePushBody)]
) -> dict[str, Any]:
    fields = SimpleFields(
        delivery_type=body.delivery_type,
        target_id=body.target_id,
        title=body.title,
        content=body.content,
        msg_key=body.msg_key,
        ext=body.ext,
        expired_seconds=body.expired_seconds,
    )
    return await store_simple(ctx, app, fields)


async def store_simple(ctx: Ctx, app: App, body: SimpleFields) -> dict[str, Any]:
    item = new_message(
        ctx,
        Options.of(body.ext, body.expired_seconds),
        push_type="simple",
        delivery_type=body.delivery_type,
        target_id=body.target_id,
        text=(body.title, body.content),
        msg_key=body.msg_key,
    )
    (outcome,) = await ctx.hub.push(app, [item])
    return push_answer(outcome)


@router.post("/v1/push/template", openapi_extra=body_openapi(TemplatePushBody))
async def push_template(
    ctx: Ctx, app: CurrentApp, body: Annotated[TemplatePushBody, json_body(TemplatePushBody)]
) -> dict[str, Any]:
    """A stored template with its `#key#` placeholders filled from `template_kv`."""
    template = await load_template(ctx, app, body.template)
    item = new_message(
        ctx,
        Options.of(body.ext, body.expired_seconds),
        push_type="template",
        delivery_type=body.delivery_type,
        target_id=body.target_id,
        text=template.render(body.template_kv, "template_kv", limit=ctx.settings.max_payload),
        msg_key=body.msg_key,
        template=body.template,
    )
    (outcome,) = await ctx.hub.push(app, [item])
    return push_answer(outcome)


@router.post("/v1/push/multiple", openapi_extra=body_openapi(MultiplePushBody))
async def push_multiple(
    ctx: Ctx,
    app: CurrentApp,
    body: Annotated[MultiplePushBody, json_body(MultiplePushBody, large=True)],
) -> dict[str, Any]:
    """Up to 1000 targets in one call, stored all or nothing."""
    fields = MultipleFields(
        delivery_type=body.delivery_type,
        targets=[(t.target_id, t.msg_key, t.template_kv) for t in body.targets],
        template=body.template,
        title=body.title,
        content=body.content,
        ext=body.ext,
        expired_seconds=body.expired_seconds,
    )
    return await store_multiple(ctx, app, fields)


async def store_multiple(ctx: Ctx, app: App, body: MultipleFields) -> dict[str, Any]:
    template = await _multiple_template(ctx, app, body)
    options = Options.of(body.ext, body.expired_seconds)
    limit = ctx.settings.max_payload
    items: list[NewMessage] = []
    work = 0
    for i, (target_id, msg_key, template_kv) in enumerate(body.targets):
        field = f"targets.{i}"
        if template is not None:
            text = template.render(
                template_kv or {}, f"{field}.template_kv", limit=limit, target=field
            )
            work += template.parts
        elif template_kv is not None:
            raise _invalid(f"{field}.template_kv", "only used with a template")
        else:
            text = (body.title or "", body.content or "")
        items.append(
            new_message(
                ctx,
                options,
                push_type="multiple",
                delivery_type=body.delivery_type,
                target_id=target_id,
                text=text,
                msg_key=msg_key,
                template=body.template,
                field=field,
            )
        )
        work += 1
        if work >= _RENDER_SLICE:
            work = 0
            await trio.lowlevel.checkpoint()
    try:
        outcomes = await ctx.hub.push(app, items)
    except MsgKeyConflict as exc:
        i = exc.index or 0
        raise ApiError(
            409,
            "msg_key_conflict",
            f"targets.{i}: {exc}; nothing of this call was stored",
            field=f"targets.{i}.msg_key",
        ) from None
    return {"messages": [_multiple_item(o) for o in outcomes]}


async def _multiple_template(ctx: Ctx, app: App, body: MultipleFields) -> CompiledTemplate | None:
    """The template of a multiple push, or None for title + content (one of the two)."""
    if body.template is not None:
        if body.title is not None or body.content is not None:
            raise _invalid("template", "give either template or title and content, not both")
        return await load_template(ctx, app, body.template)
    if body.title is None and body.content is None:
        raise _invalid("template", "give template, or title and content")
    if body.title is None:
        raise _invalid("title", "required with content")
    if body.content is None:
        raise _invalid("content", "required with title")
    return None


@router.post("/v1/push/broadcast", openapi_extra=body_openapi(BroadcastPushBody))
async def push_broadcast(
    ctx: Ctx, app: CurrentApp, body: Annotated[BroadcastPushBody, json_body(BroadcastPushBody)]
) -> dict[str, Any]:
    """Every device of the app (of `platform`, if given) online now or
    connecting before expiry gets it, once each."""
    item = new_message(
        ctx,
        Options.of(body.ext, body.expired_seconds),
        push_type="broadcast",
        delivery_type=body.platform or BROADCAST_ALL,
        target_id=BROADCAST_TARGET,
        text=(body.title, body.content),
        msg_key=body.msg_key,
        platform=body.platform,
    )
    (outcome,) = await ctx.hub.push(app, [item])
    message = outcome.message
    answer: dict[str, Any] = {"message_id": message.message_id, "msg_key": message.msg_key}
    if outcome.duplicate:
        answer["duplicate"] = True
    return answer


@router.get("/v1/broadcasts/{message_id}", responses=error_responses(404))
async def get_broadcast(message_id: str, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    """How far a broadcast went: deliveries opened, written to a socket, acked."""
    stats = await ctx.store.broadcast_stats(app.app_id, message_id)
    if stats is None:
        raise ApiError(404, "not_found", f"no broadcast {message_id[:128]!r} in this app")
    return {
        "message_id": stats.message.message_id,
        "targeted": stats.targeted,
        "delivered": stats.delivered,
        "acked": stats.acked,
        "expires_at": iso_ms(stats.message.expires_at),
    }


def _multiple_item(outcome: PushOutcome) -> dict[str, Any]:
    m = outcome.message
    item: dict[str, Any] = {
        "target_id": m.target_id,
        "msg_key": m.msg_key,
        "message_id": m.message_id,
        "status": m.status,
    }
    if outcome.duplicate:
        item["duplicate"] = True
    return item

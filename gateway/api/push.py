"""Pushing: every push type stores its messages, then routes them to live sessions.

`simple`, `template` and `multiple` store one row per target and route it to
the target's devices online now; `broadcast` stores one row and opens a
delivery per device as devices are seen (online now, or at their `hello`).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.store import App, MsgKeyConflict, NewMessage, PushOutcome
from gateway.timefmt import iso_ms
from protocol import Push, encode

from .context import ApiContext
from .errors import ApiError
from .models import BroadcastPushBody, MultiplePushBody, SimplePushBody, TemplatePushBody
from .templates import load_template, render_template
from .views import push_answer

# The payload limit counts the whole encoded `push` frame, with IDs of the
# length the gateway generates and 13-digit timestamps.
_ID_PLACEHOLDER = "0" * 26
_TIME_PLACEHOLDER = 1_700_000_000_000

# A broadcast has no target: its row's target_id is "" (never a valid ID, so
# its msg_key can collide with no other push's) and its delivery_type is the
# platform it is limited to, or "all".
BROADCAST_TARGET = ""
BROADCAST_ALL = "all"


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


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{field}: {message}", field=field)


def router(ctx: ApiContext) -> APIRouter:
    api = APIRouter(tags=["push"])
    AppDep = Annotated[App, Depends(ctx.authenticate)]

    def check_payload(item: NewMessage, field: str | None = None) -> None:
        size = encoded_push_size(item)
        if size > ctx.settings.max_payload:
            where = f"{field}: " if field else ""
            raise ApiError(
                413,
                "payload_too_large",
                f"{where}the encoded push frame would be {size} bytes; the limit is"
                f" {ctx.settings.max_payload}",
                field=field,
            )

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
        check_payload(item)
        (outcome,) = await ctx.hub.push(app, [item])
        return push_answer(outcome)

    @api.post("/v1/push/template")
    async def push_template(body: TemplatePushBody, app: AppDep) -> dict[str, Any]:
        """A stored template with its `#key#` placeholders filled from `template_kv`."""
        template = await load_template(ctx, app, body.template)
        title, content = render_template(template, body.template_kv, "template_kv")
        item = NewMessage(
            push_type="template",
            delivery_type=body.delivery_type,
            target_id=body.target_id,
            title=title,
            content=content,
            ext=body.ext,
            msg_key=body.msg_key,
            expired_seconds=body.expired_seconds,
            template=body.template,
        )
        check_payload(item)
        (outcome,) = await ctx.hub.push(app, [item])
        return push_answer(outcome)

    @api.post("/v1/push/multiple")
    async def push_multiple(body: MultiplePushBody, app: AppDep) -> dict[str, Any]:
        """Up to 1000 targets in one call, stored all or nothing."""
        template = None
        if body.template is not None:
            if body.title is not None or body.content is not None:
                raise _invalid("template", "give either template or title and content, not both")
            template = await load_template(ctx, app, body.template)
        elif body.title is None and body.content is None:
            raise _invalid("template", "give template, or title and content")
        elif body.title is None:
            raise _invalid("title", "required with content")
        elif body.content is None:
            raise _invalid("content", "required with title")
        items: list[NewMessage] = []
        for i, target in enumerate(body.targets):
            if template is not None:
                values = target.template_kv or {}
                title, content = render_template(template, values, f"targets.{i}.template_kv")
            elif target.template_kv is not None:
                raise _invalid(f"targets.{i}.template_kv", "only used with a template")
            else:
                title, content = body.title or "", body.content or ""
            item = NewMessage(
                push_type="multiple",
                delivery_type=body.delivery_type,
                target_id=target.target_id,
                title=title,
                content=content,
                ext=body.ext,
                msg_key=target.msg_key,
                expired_seconds=body.expired_seconds,
                template=body.template,
            )
            check_payload(item, f"targets.{i}")
            items.append(item)
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

    @api.post("/v1/push/broadcast")
    async def push_broadcast(body: BroadcastPushBody, app: AppDep) -> dict[str, Any]:
        """Every device of the app (of `platform`, if given) online now or
        connecting before expiry gets it, once each."""
        item = NewMessage(
            push_type="broadcast",
            delivery_type=body.platform or BROADCAST_ALL,
            target_id=BROADCAST_TARGET,
            title=body.title,
            content=body.content,
            ext=body.ext,
            msg_key=body.msg_key,
            expired_seconds=body.expired_seconds,
            platform=body.platform,
        )
        check_payload(item)
        (outcome,) = await ctx.hub.push(app, [item])
        message = outcome.message
        answer: dict[str, Any] = {"message_id": message.message_id, "msg_key": message.msg_key}
        if outcome.duplicate:
            answer["duplicate"] = True
        return answer

    @api.get("/v1/broadcasts/{message_id}")
    async def get_broadcast(message_id: str, app: AppDep) -> dict[str, Any]:
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

    return api


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

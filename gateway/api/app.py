"""The management API (CONTRACT.md section 4) as a FastAPI app."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request

from gateway.store import App, NewMessage
from protocol import Push, encode

from .context import ApiContext
from .errors import ApiError, install_error_handlers
from .models import BindingBody, Id, SimplePushBody
from .views import device_view, message_details, push_answer

# The payload limit counts the whole encoded `push` frame, with IDs of the
# length the gateway generates and 13-digit timestamps.
_ID_PLACEHOLDER = "0" * 26
_TIME_PLACEHOLDER = 1_700_000_000_000


def encoded_push_size(msg_key: str | None, push_type: str, item: NewMessage) -> int:
    frame = Push(
        id=_ID_PLACEHOLDER,
        msg_key=msg_key or _ID_PLACEHOLDER,
        push_type=push_type,
        title=item.title,
        content=item.content,
        ext=item.ext,
        created=_TIME_PLACEHOLDER,
        expires=_TIME_PLACEHOLDER,
    )
    return len(encode(frame))


def create_api(ctx: ApiContext) -> FastAPI:
    api = FastAPI(
        title="pushgate",
        version="1",
        description="Management API of the pushgate push gateway.",
    )
    install_error_handlers(api)

    async def current_app(request: Request) -> App:
        return await ctx.authenticate(request)

    AppDep = Annotated[App, Depends(current_app)]

    def check_payload(item: NewMessage) -> None:
        size = encoded_push_size(item.msg_key, item.push_type, item)
        if size > ctx.settings.max_payload:
            raise ApiError(
                413,
                "payload_too_large",
                f"the encoded push frame would be {size} bytes; the limit is"
                f" {ctx.settings.max_payload}",
            )

    async def store_and_route(app: App, items: list[NewMessage]) -> list[Any]:
        outcomes = await ctx.store.insert_messages(app, items)
        ctx.hub.route(app.app_id, outcomes)
        return outcomes

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "online": ctx.hub.online_count}

    @api.post("/v1/push/simple", tags=["push"])
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
        (outcome,) = await store_and_route(app, [item])
        return push_answer(outcome)

    @api.get("/v1/messages/{message_id}", tags=["messages"])
    async def get_message(message_id: str, app: AppDep) -> dict[str, Any]:
        found = await ctx.store.get_message(app.app_id, message_id)
        if found is None:
            raise ApiError(404, "not_found", f"no message {message_id[:128]!r} in this app")
        return message_details(*found)

    @api.post("/v1/bindings", tags=["devices"])
    async def create_binding(body: BindingBody, app: AppDep) -> dict[str, Any]:
        await ctx.hub.bind_and_deliver(app.app_id, body.device_id, body.user_id)
        return {"device_id": body.device_id, "user_id": body.user_id}

    @api.delete("/v1/bindings/{device_id}", tags=["devices"])
    async def delete_binding(device_id: Id, app: AppDep) -> dict[str, Any]:
        old = await ctx.hub.unbind(app.app_id, device_id)
        return {"device_id": device_id, "user_id": None, "previous_user_id": old}

    @api.get("/v1/devices/{device_id}", tags=["devices"])
    async def get_device(device_id: Id, app: AppDep) -> dict[str, Any]:
        info = await ctx.store.get_device(app.app_id, device_id)
        if info is None:
            raise ApiError(404, "not_found", f"no device {device_id!r} in this app")
        return device_view(info, ctx.hub.session_for(app.app_id, device_id) is not None)

    @api.get("/v1/users/{user_id}/devices", tags=["devices"])
    async def get_user_devices(user_id: Id, app: AppDep) -> dict[str, Any]:
        devices = await ctx.store.user_devices(app.app_id, user_id)
        return {
            "items": [
                device_view(d, ctx.hub.session_for(app.app_id, d.device_id) is not None)
                for d in devices
            ],
            "next_cursor": None,
        }

    return api

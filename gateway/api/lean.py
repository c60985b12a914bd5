"""The hot push routes served in front of FastAPI: `POST /v1/push/simple` and `/multiple`.

A simple push is one message per HTTP call, so the routing, dependency
injection, Pydantic validation and response classes of FastAPI/Starlette
cost several times the push itself (~700 µs of the event loop per call
against ~150 here). These two routes are answered here, straight from
hypercorn's ASGI scope, with the same steps in the same order as the FastAPI
routes (the key and the rate before a byte of the body, the body's limits and
deadline, JSON decoded in slices, the strict checks of plain.py, the push)
and the same answers, errors included; every other request goes on to
FastAPI, which still documents these two (/openapi.json, /docs).
tests/api/test_lean.py compares both for valid and invalid bodies.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.store import MsgKeyConflict, StoreUnavailable

from .body import receive_text
from .context import ApiContext
from .errors import ApiError, error_body
from .jsonbody import ElementHook, NotJson, parse_json
from .models import MultiplePushBody, SimplePushBody
from .plain import multiple_fields, simple_fields, target_element
from .push import store_multiple, store_simple

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]  # lowercase names, as in an ASGI scope
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Answer = tuple[int, dict[str, Any], dict[str, str] | None]


async def _simple(ctx: ApiContext, app: Any, text: str) -> dict[str, Any]:
    data = await _decode(text, _SIMPLE_MEMBERS, None)
    return await store_simple(ctx, app, simple_fields(data))


async def _multiple(ctx: ApiContext, app: Any, text: str) -> dict[str, Any]:
    data = await _decode(text, _MULTIPLE_MEMBERS, target_element)
    return await store_multiple(ctx, app, multiple_fields(data))


_SIMPLE_MEMBERS = frozenset(SimplePushBody.model_fields)
_MULTIPLE_MEMBERS = frozenset(MultiplePushBody.model_fields)
Handler = Callable[[ApiContext, Any, str], Awaitable[dict[str, Any]]]
# path -> (handler, large body)
ROUTES: dict[str, tuple[Handler, bool]] = {
    "/v1/push/simple": (_simple, False),
    "/v1/push/multiple": (_multiple, True),
}


async def _decode(text: str, members: frozenset[str], element: ElementHook | None) -> Any:
    try:
        return await parse_json(text, members=members, element=element)
    except NotJson as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


class LeanPushRoutes:
    """ASGI app: the hot push routes here, everything else to `app` (FastAPI)."""

    def __init__(self, app: AsgiApp, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = ROUTES.get(scope["path"])
            if route is not None and not scope.get("root_path"):
                await self._serve(route, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _serve(
        self, route: tuple[Handler, bool], scope: Scope, receive: Receive, send: Send
    ) -> None:
        status, headers, raw = await self.respond(route, scope["headers"], receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def respond(
        self,
        route: tuple[Handler, bool],
        headers: Headers,
        receive: Receive,
        at_hand: Callable[[], bytes | None] | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """A hot route's answer: status, headers (as Starlette's JSONResponse), body.

        `at_hand`: the whole body if it is in already (body.receive_text)."""
        handler, large = route
        status, body, extra = await self._answer(handler, large, headers, receive, at_hand)
        raw = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        out = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
        out.append((b"content-length", str(len(raw)).encode()))
        out.append((b"content-type", b"application/json"))
        return status, out, raw

    async def _answer(
        self,
        handler: Handler,
        large: bool,
        headers: Headers,
        receive: Receive,
        at_hand: Callable[[], bytes | None] | None,
    ) -> Answer:
        ctx = self.ctx
        authorization = content_length = None
        for name, value in headers:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"content-length" and content_length is None:
                content_length = value.decode("latin-1")
        try:
            app = await ctx.authenticate(authorization or "")
            text = await receive_text(
                receive,
                content_length,
                limit=ctx.body_limit(large),
                timeout=ctx.settings.http_body_timeout,
                at_hand=at_hand,
            )
            return 200, await handler(ctx, app, text), None
        except ApiError as exc:
            return exc.status, error_body(exc.code, exc.message, exc.field), exc.headers
        except MsgKeyConflict as exc:
            return 409, error_body("msg_key_conflict", str(exc), "msg_key"), None
        except StoreUnavailable as exc:
            message = f"the message store cannot commit: {exc}"
            return 503, error_body("store_unavailable", message), {"Retry-After": "5"}

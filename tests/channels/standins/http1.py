"""The HTTP/1.1 stand-ins' common part: an ASGI app served by hypercorn on port 0.

A stand-in records every request, checks its documented shape (adding a line
to `problems` for each deviation: the fixture fails the test on any), and
answers what the test programmed, by device token, or success.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from starlette.requests import Request
from starlette.responses import Response


@dataclass
class Reply:
    """What a stand-in answers: a JSON object (or raw bytes), a status, headers."""

    body: dict[str, Any] | bytes = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def response(self) -> Response:
        content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return Response(content, self.status, self.headers, media_type=self.content_type)


Handler = Callable[[Request], Awaitable[Reply]]


class StandIn:
    """Routes POSTs by path to handlers; subclasses add the vendor's checks."""

    def __init__(self) -> None:
        self.base_url = ""
        self.problems: list[str] = []
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers)
        self.routes: dict[str, Handler] = {}
        self.answers: dict[str, Reply] = {}  # by device token
        self.auth_answer: Reply | None = None
        self.hold: trio.Event | None = None  # set: requests wait for it
        self.in_flight = 0
        self.max_in_flight = 0

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def expect(self, condition: bool, text: str) -> None:
        if not condition:
            self.problem(text)

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request = Request(scope, receive)
        self.requests.append((request.url.path, dict(request.headers)))
        handler = self.routes.get(request.url.path)
        if request.method != "POST" or handler is None:
            self.problem(f"unexpected {request.method} {request.url.path}")
            reply = Reply(b"not found", 404, content_type="text/plain")
        else:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.hold is not None:
                    await self.hold.wait()
                reply = await handler(request)
            finally:
                self.in_flight -= 1
        await reply.response()(scope, receive, send)


@asynccontextmanager
async def serving(app: StandIn) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = logging.getLogger("standin")
    config.graceful_timeout = 1
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        app.base_url = binds[0]
        try:
            yield binds[0]
        finally:
            stop.set()


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form (checked to be one: vendors that take forms require it)."""
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


async def json_body(request: Request) -> dict[str, Any]:
    try:
        value = json.loads(await request.body())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

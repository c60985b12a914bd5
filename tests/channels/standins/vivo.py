"""A vivo Push stand-in: auth with the md5 sign, then /message/send with the
`authToken` header (checks title/content limits, timeToLive, the custom map)."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request

from gateway.clock import Clock

from .http1 import Reply, StandIn, json_body

AUTH_PATH = "/message/auth"
SEND_PATH = "/message/send"


def vivo_code(code: int, desc: str = "error", **extra: Any) -> Reply:
    return Reply({"result": code, "desc": desc, **extra})


class VivoStandIn(StandIn):
    def __init__(self, *, app_id: str, app_key: str, app_secret: str, clock: Clock) -> None:
        super().__init__()
        self.app_id, self.app_key, self.app_secret, self.clock = app_id, app_key, app_secret, clock
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.routes = {AUTH_PATH: self._auth, SEND_PATH: self._send}

    async def _auth(self, request: Request) -> Reply:
        body = await json_body(request)
        timestamp = body.get("timestamp")
        expected = hashlib.md5(
            f"{self.app_id}{self.app_key}{timestamp}{self.app_secret}".encode()
        ).hexdigest()
        if (
            body.get("appId") != self.app_id
            or body.get("appKey") != self.app_key
            or body.get("sign") != expected
        ):
            self.problem("auth: wrong appId, appKey or sign")
            return vivo_code(10000, "鉴权失败")
        self.expect(
            isinstance(timestamp, int) and abs(timestamp - self.clock.now_ms()) <= 600_000,
            "auth: timestamp not within 10 minutes",
        )
        if self.auth_answer is not None:
            return self.auth_answer
        token = f"vivo-standin-{len(self.issued)}"
        self.issued.append(token)
        return Reply({"result": 0, "desc": "请求成功", "authToken": token})

    async def _send(self, request: Request) -> Reply:
        token = request.headers.get("authtoken", "")
        if token not in self.issued or token in self.revoked:
            return vivo_code(10000, "鉴权失败")
        body = await json_body(request)
        self.sent.append(body)
        self.expect(body.get("appId") == self.app_id, "send: wrong appId")
        self.expect(0 < len(body.get("title", "")) <= 40, "send: title empty or over 40")
        self.expect(len(body.get("content", "")) <= 100, "send: content over 100")
        ttl = body.get("timeToLive")
        self.expect(isinstance(ttl, int) and 60 <= ttl <= 604_800, "timeToLive out of range")
        request_id = body.get("requestId", "")
        self.expect(0 < len(request_id) <= 64, "requestId empty or over 64")
        custom = body.get("clientCustomMap", {})
        self.expect(isinstance(custom, dict) and "id" in custom, "no message id in the custom map")
        answer = self.answers.get(body.get("regId", ""))
        if answer is not None:
            return answer
        return Reply({"result": 0, "desc": "请求成功", "taskId": "t1"})

"""A MiPush stand-in: `Authorization: key=<AppSecret>`, the regid form fields."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .http1 import Reply, StandIn, form

SEND_PATH = "/v3/message/regid"


def mi_code(code: int, description: str = "error") -> Reply:
    return Reply({"result": "error", "code": code, "description": description, "reason": "x"})


class XiaomiStandIn(StandIn):
    def __init__(self, *, app_secret: str, package_name: str) -> None:
        super().__init__()
        self.app_secret, self.package_name = app_secret, package_name
        self.forms: list[dict[str, str]] = []
        self.routes = {SEND_PATH: self._send}

    async def _send(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"key={self.app_secret}":
            self.problem("send: wrong Authorization key")
            return mi_code(21301, "Authentication failed")
        self.expect(
            request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"),
            "send: not a form",
        )
        fields = await form(request)
        self.forms.append(fields)
        for name in ("registration_id", "title", "description", "payload", "time_to_live"):
            self.expect(bool(fields.get(name)), f"send: missing {name}")
        self.expect(
            fields.get("restricted_package_name") == self.package_name, "send: wrong package name"
        )
        self.expect(fields.get("pass_through") == "0", "send: pass_through must be 0")
        ttl = fields.get("time_to_live", "")
        self.expect(ttl.isdigit() and 0 < int(ttl) <= 14 * 86_400_000, "time_to_live out of range")
        payload: Any = json.loads(fields.get("payload") or "{}")
        self.expect(payload.get("id") == fields.get("extra.id"), "payload carries no message id")
        self.expect(len(fields.get("title", "")) <= 50, "title over 50 characters")
        answer = self.answers.get(fields.get("registration_id", ""))
        if answer is not None:
            return answer
        return Reply({"result": "ok", "code": 0, "data": {"id": "scm01"}, "description": "成功"})

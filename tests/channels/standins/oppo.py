"""An OPPO Push stand-in: auth with the sha256 sign (timestamp within 10 min),
unicast and unicast_batch (up to 1000) with the auth_token form field."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request

from gateway.clock import Clock

from .http1 import Reply, StandIn, form

AUTH_PATH = "/server/v1/auth"
UNICAST_PATH = "/server/v1/message/notification/unicast"
BATCH_PATH = "/server/v1/message/notification/unicast_batch"


def oppo_code(code: int, message: str = "error") -> Reply:
    return Reply({"code": code, "message": message})


class OppoStandIn(StandIn):
    def __init__(self, *, app_key: str, master_secret: str, clock: Clock) -> None:
        super().__init__()
        self.app_key, self.master_secret, self.clock = app_key, master_secret, clock
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        self.routes = {AUTH_PATH: self._auth, UNICAST_PATH: self._unicast, BATCH_PATH: self._batch}

    async def _auth(self, request: Request) -> Reply:
        fields = await form(request)
        timestamp = fields.get("timestamp", "")
        expected = hashlib.sha256(
            f"{self.app_key}{timestamp}{self.master_secret}".encode()
        ).hexdigest()
        if fields.get("app_key") != self.app_key or fields.get("sign") != expected:
            self.problem("auth: wrong app_key or sign")
            return oppo_code(16, "Invalid Signature")
        self.expect(
            timestamp.isdigit() and abs(int(timestamp) - self.clock.now_ms()) <= 600_000,
            "auth: timestamp not within 10 minutes",
        )
        if self.auth_answer is not None:
            return self.auth_answer
        token = f"oppo-standin-{len(self.issued)}"
        self.issued.append(token)
        return Reply(
            {
                "code": 0,
                "message": "",
                "data": {"auth_token": token, "create_time": self.clock.now_ms()},
            }
        )

    def _authorised(self, fields: dict[str, str]) -> bool:
        token = fields.get("auth_token", "")
        return token in self.issued and token not in self.revoked

    def _check(self, message: Any) -> str | None:
        """The message's target, after checking its shape."""
        if not isinstance(message, dict) or message.get("target_type") != 2:
            self.problem("message: target_type must be 2 (registration_id)")
            return None
        notification = message.get("notification", {})
        self.messages.append(message)
        self.expect(bool(notification.get("title")), "notification: no title")
        self.expect(len(notification.get("title", "")) <= 50, "notification: title over 50")
        ttl = notification.get("off_line_ttl")
        self.expect(isinstance(ttl, int) and 0 < ttl <= 864_000, "off_line_ttl out of range")
        params = json.loads(notification.get("action_parameters") or "{}")
        self.expect("id" in params, "action_parameters carries no message id")
        target = message.get("target_value")
        return target if isinstance(target, str) else None

    async def _unicast(self, request: Request) -> Reply:
        fields = await form(request)
        if not self._authorised(fields):
            return oppo_code(11, "Invalid Auth Token")
        target = self._check(json.loads(fields.get("message") or "null"))
        answer = self.answers.get(target or "")
        if answer is not None:
            return answer
        return Reply({"code": 0, "message": "Success", "data": {"messageId": "m1"}})

    async def _batch(self, request: Request) -> Reply:
        fields = await form(request)
        if not self._authorised(fields):
            return oppo_code(11, "Invalid Auth Token")
        messages = json.loads(fields.get("messages") or "null")
        if not isinstance(messages, list) or not 1 <= len(messages) <= 1000:
            self.problem("unicast_batch: messages must list 1-1000 messages")
            return oppo_code(10000)
        items = []
        for index, message in enumerate(messages):
            target = self._check(message)
            answer = self.answers.get(target or "")
            if answer is not None and isinstance(answer.body, dict) and answer.body.get("code"):
                items.append(
                    {
                        "registrationId": target,
                        "errorCode": answer.body["code"],
                        "errorMessage": answer.body.get("message", ""),
                    }
                )
            else:
                items.append({"registrationId": target, "messageId": f"m{index}"})
        return Reply({"code": 0, "message": "Success", "data": items})

"""A Huawei Push Kit stand-in: client-credentials OAuth, then v1 send with up to
1000 tokens, answering per token (partial success lists illegal_tokens)."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from .http1 import Reply, StandIn, form, json_body

TOKEN_PATH = "/oauth2/v3/token"


def huawei_code(code: int, status: int = 200, msg: str = "error") -> Reply:
    return Reply({"code": str(code), "msg": msg, "requestId": "standin"}, status)


def nsp_status(code: int) -> Reply:
    """The legacy API's way: the code in an NSP_STATUS header, no JSON body."""
    return Reply(b"", 503 if code in (110, 111) else 200, {"NSP_STATUS": str(code)}, "text/plain")


class HuaweiStandIn(StandIn):
    def __init__(self, *, app_id: str, app_secret: str) -> None:
        super().__init__()
        self.app_id, self.app_secret = app_id, app_secret
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.calls: list[dict[str, Any]] = []
        self.illegal_tokens: set[str] = set()  # named in a partial success (80100000)
        self.routes = {TOKEN_PATH: self._token, f"/v1/{app_id}/messages:send": self._send}

    @property
    def auth_url(self) -> str:
        return self.base_url + TOKEN_PATH

    async def _token(self, request: Request) -> Reply:
        fields = await form(request)
        if fields != {
            "grant_type": "client_credentials",
            "client_id": self.app_id,
            "client_secret": self.app_secret,
        }:
            self.problem("token request: wrong client credentials form")
            return Reply({"error": 1101, "error_description": "invalid client"}, 400)
        if self.auth_answer is not None:
            return self.auth_answer
        token = f"hw-standin-{len(self.issued)}"
        self.issued.append(token)
        return Reply({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def _send(self, request: Request) -> Reply:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.revoked:
            return huawei_code(80200003, 401, "OAuth token expired")
        self.expect(
            request.headers.get("content-type", "").startswith("application/json"),
            "send: content type is not JSON",
        )
        body = await json_body(request)
        message = body.get("message", {})
        tokens = message.get("token")
        if not isinstance(tokens, list) or not 1 <= len(tokens) <= 1000:
            self.problem("send: message.token must list 1-1000 tokens")
            return huawei_code(80100002)
        self.calls.append(message)
        self.expect(isinstance(message.get("data"), str), "send: data must be a JSON string")
        self.expect("id" in json.loads(message.get("data") or "{}"), "data carries no message id")
        ttl = message.get("android", {}).get("ttl", "")
        match = re.fullmatch(r"(\d+)s", ttl) if isinstance(ttl, str) else None
        if match is None or int(match.group(1)) > 1_296_000:
            self.problem(f"android.ttl invalid: {ttl!r}")
        illegal = [t for t in tokens if t in self.illegal_tokens]
        if illegal:
            detail = {
                "success": len(tokens) - len(illegal),
                "failure": len(illegal),
                "illegal_tokens": illegal,
            }
            return Reply({"code": "80100000", "msg": json.dumps(detail), "requestId": "r"})
        for token in tokens:
            if token in self.answers:
                return self.answers[token]
        return Reply({"code": "80000000", "msg": "Success", "requestId": "r"})

"""vivo Push: an auth token (md5 sign), then one JSON send per regId with the
`authToken` header; `result` 0 for success, vivo's own codes are the seeds' codes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Final

from gateway.clock import Clock

from .auth import AuthFailed, IssuedToken, TokenCache
from .base import HttpChannel, with_token
from .credentials import VIVO_ENDPOINT, VivoCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery
from .result import SendResult, local_refusal, refused
from .secret import Secret

TOKEN_LIFETIME_MS: Final = 24 * 3_600_000
REFRESH_AFTER_MS: Final = 3_600_000  # vivo suggests renewing every 1-2 h
MAX_TITLE: Final = 40
MAX_CONTENT: Final = 100
MAX_CUSTOM_MAP: Final = 1024
MIN_TTL: Final = 60
MAX_TTL: Final = 86_400  # vivo's sources say 1 or 7 days: the shorter holds for both
AUTH_FAILED: Final = 10000
DEAD_TOKEN_CODES: Final = frozenset({10302})  # invalid regId
TRANSIENT_CODES: Final = frozenset({10040, 10072})  # resource limit, sending too fast


def sign(app_id: str, app_key: str, timestamp: str, app_secret: str) -> str:
    return hashlib.md5(f"{app_id}{app_key}{timestamp}{app_secret}".encode()).hexdigest()


class VivoChannel(HttpChannel):
    vendor = "vivo"
    bad_token_code = 10302  # invalid regId
    dead_token_codes = DEAD_TOKEN_CODES
    transient_codes = TRANSIENT_CODES

    def __init__(
        self, app_id: str, credentials: VivoCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client())
        self._credentials = credentials
        base = credentials.endpoint or VIVO_ENDPOINT
        self._auth_url = credentials.auth_endpoint or f"{base}/message/auth"
        self._send_url = f"{base}/message/send"
        self.tokens = TokenCache(
            self._fetch_token, clock, margin_ms=TOKEN_LIFETIME_MS - REFRESH_AFTER_MS
        )

    async def _fetch_token(self) -> IssuedToken:
        now_ms = self.clock.now_ms()
        c = self._credentials
        timestamp = str(now_ms)
        body = {
            "appId": c.app_id,
            "appKey": c.app_key,
            "timestamp": now_ms,
            "sign": sign(c.app_id, c.app_key, timestamp, c.app_secret.reveal()),
        }
        answer = await post(self.client, self._auth_url, json=body)
        reply = answer.json_object() or {}
        token = reply.get("authToken")
        if reply.get("result") == 0 and isinstance(token, str):
            return IssuedToken(Secret(token), now_ms + TOKEN_LIFETIME_MS)
        if reply.get("result") == 0:
            raise AuthFailed(refused(self.vendor, None, "auth: result 0 without a usable token"))
        raise AuthFailed(self._result(answer))

    def _custom_map(self, delivery: VendorDelivery) -> dict[str, str]:
        message = delivery.message
        return {
            "id": message.message_id,
            "msg_key": message.msg_key,
            "ext": json.dumps(dict(message.ext), ensure_ascii=False, separators=(",", ":")),
        }

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        message = delivery.message
        if not message.title:
            return local_refusal(self.vendor, 10055, "the title is empty")
        if len(message.title) > MAX_TITLE:
            return local_refusal(self.vendor, 10056, f"title over {MAX_TITLE} characters")
        if len(message.content) > MAX_CONTENT:
            return local_refusal(self.vendor, 10058, f"content over {MAX_CONTENT} characters")
        if len(json.dumps(self._custom_map(delivery), ensure_ascii=False)) > MAX_CUSTOM_MAP:
            return local_refusal(
                self.vendor, 10067, f"id, msg_key and ext over {MAX_CUSTOM_MAP} characters"
            )
        if message.ttl_seconds(self.clock.now_ms(), MAX_TTL) < MIN_TTL:
            # vivo keeps a message at least 60 s: it could arrive after its expiry.
            return local_refusal(self.vendor, None, f"expires in under {MIN_TTL} s")
        return None

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        (delivery,) = batch
        message = delivery.message
        # Unique per (message, device) and stable across retries: vivo refuses a repeat (10303).
        request_id = (
            f"{message.message_id}-{hashlib.sha256(delivery.token.encode()).hexdigest()[:16]}"
        )
        body = json.dumps(
            {
                "appId": self._credentials.app_id,
                "regId": delivery.token,
                "notifyType": 4,
                "title": message.title,
                "content": message.content,
                "timeToLive": message.ttl_seconds(self.clock.now_ms(), MAX_TTL),
                "skipType": 1,  # open the app
                "clientCustomMap": self._custom_map(delivery),
                "requestId": request_id[:64],
                "pushMode": 0,
            },
            ensure_ascii=False,
        ).encode()

        async def call(token: Secret) -> Answer:
            headers = {"authToken": token.reveal(), "content-type": "application/json"}
            return await post(self.client, self._send_url, content=body, headers=headers)

        def rejected(answer: Answer) -> bool:
            return (answer.json_object() or {}).get("result") == AUTH_FAILED

        return [self._result(await with_token(self.tokens, call, rejected))]

    def _result(self, answer: Answer) -> SendResult:
        return self.native_result(answer, (answer.json_object() or {}).get("result"))

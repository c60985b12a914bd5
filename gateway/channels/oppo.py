"""OPPO Push: an auth token (sha256 sign, valid 24 h), then `unicast` for one
message or `unicast_batch` for up to 1000; OPPO's own codes are the seeds' codes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final

from gateway.clock import Clock

from .auth import AuthFailed, IssuedToken, TokenCache
from .base import HttpChannel, with_token
from .credentials import OPPO_ENDPOINT, OppoCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery
from .result import SendResult, local_refusal, refused
from .secret import Secret

TOKEN_LIFETIME_MS: Final = 24 * 3_600_000
REFRESH_MARGIN_MS: Final = 3_600_000
MAX_TITLE: Final = 50
MAX_CONTENT: Final = 200
MAX_ACTION_PARAMETERS: Final = 4000
MAX_TTL: Final = 10 * 86_400
INVALID_AUTH_TOKEN: Final = 11
DEAD_TOKEN_CODES: Final = frozenset({10000})  # invalid registration_id
TRANSIENT_CODES: Final = frozenset({-1, -2, 13})  # unavailable, flow control, call limit


def sign(app_key: str, timestamp: str, master_secret: str) -> str:
    return hashlib.sha256(f"{app_key}{timestamp}{master_secret}".encode()).hexdigest()


class OppoChannel(HttpChannel):
    vendor = "oppo"
    bad_token_code = 10000  # invalid registration_id
    dead_token_codes = DEAD_TOKEN_CODES
    transient_codes = TRANSIENT_CODES
    max_batch = 1000

    def __init__(
        self, app_id: str, credentials: OppoCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client())
        self._credentials = credentials
        base = credentials.endpoint or OPPO_ENDPOINT
        self._auth_url = credentials.auth_endpoint or f"{base}/server/v1/auth"
        self._unicast_url = f"{base}/server/v1/message/notification/unicast"
        self._batch_url = f"{base}/server/v1/message/notification/unicast_batch"
        self.tokens = TokenCache(self._fetch_token, clock, margin_ms=REFRESH_MARGIN_MS)

    async def _fetch_token(self) -> IssuedToken:
        now_ms = self.clock.now_ms()
        timestamp = str(now_ms)
        form = {
            "app_key": self._credentials.app_key,
            "timestamp": timestamp,
            "sign": sign(
                self._credentials.app_key, timestamp, self._credentials.master_secret.reveal()
            ),
        }
        answer = await post(self.client, self._auth_url, data=form)
        body = answer.json_object() or {}
        data = body.get("data")
        token = data.get("auth_token") if isinstance(data, dict) else None
        if body.get("code") == 0 and isinstance(token, str):
            return IssuedToken(Secret(token), now_ms + TOKEN_LIFETIME_MS)
        if body.get("code") == 0:
            raise AuthFailed(refused(self.vendor, None, "auth: code 0 without a usable token"))
        raise AuthFailed(self.native_result(answer, body.get("code")))

    def _message(self, delivery: VendorDelivery) -> dict[str, Any]:
        message = delivery.message
        return {
            "target_type": 2,  # registration_id
            "target_value": delivery.token,
            "notification": {
                "title": message.title,
                "content": message.content,
                "click_action_type": 0,  # open the app
                "action_parameters": message.app_data_json(),
                "off_line": True,
                "off_line_ttl": message.ttl_seconds(self.clock.now_ms(), MAX_TTL),
            },
        }

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        message = delivery.message
        if message.ttl_seconds(self.clock.now_ms(), MAX_TTL) <= 0:
            return local_refusal(self.vendor, None, "the message has expired")
        if len(message.title) > MAX_TITLE:
            return local_refusal(self.vendor, None, f"title over {MAX_TITLE} characters")
        if len(message.content) > MAX_CONTENT:
            return local_refusal(self.vendor, None, f"content over {MAX_CONTENT} characters")
        if len(message.app_data_json()) > MAX_ACTION_PARAMETERS:
            return local_refusal(
                self.vendor, None, f"id, msg_key and ext over {MAX_ACTION_PARAMETERS} characters"
            )
        return None

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        if len(batch) == 1:
            field, url = "message", self._unicast_url
            payload: object = self._message(batch[0])
        else:
            field, url = "messages", self._batch_url
            payload = [self._message(d) for d in batch]
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

        async def call(token: Secret) -> Answer:
            return await post(self.client, url, data={"auth_token": token.reveal(), field: text})

        def rejected(answer: Answer) -> bool:
            return (answer.json_object() or {}).get("code") == INVALID_AUTH_TOKEN

        answer = await with_token(self.tokens, call, rejected)
        body = answer.json_object() or {}
        code = body.get("code")
        if code != 0 or len(batch) == 1:
            return [self.native_result(answer, code)] * len(batch)
        return self._batch_results(answer, body, batch)

    def _batch_results(
        self, answer: Answer, body: dict[str, Any], batch: Sequence[VendorDelivery]
    ) -> list[SendResult]:
        """unicast_batch answers one item per message: an errorCode for each refused one."""
        items = body.get("data")
        by_token: dict[str, dict[str, Any]] = {}
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and isinstance(item.get("registrationId"), str):
                by_token[item["registrationId"]] = item
        results = []
        for delivery in batch:
            item = by_token.get(delivery.token)
            if item is None:
                results.append(self.garbage(answer))
            else:
                raw = json.dumps(item, ensure_ascii=False)
                results.append(self.native_result(answer, item.get("errorCode", 0), raw=raw))
        return results

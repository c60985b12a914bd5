"""Huawei Push Kit: OAuth client credentials, then the v1 send API, up to 1000
tokens per call. Huawei's own codes are the seeds' codes; the legacy API's
`NSP_STATUS` header is read when the body carries no code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from gateway.clock import Clock

from .auth import AuthFailed, IssuedToken, TokenCache
from .base import HttpChannel, with_token
from .credentials import HUAWEI_AUTH_ENDPOINT, HUAWEI_ENDPOINT, HuaweiCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery, VendorMessage
from .result import SendResult, accepted, local_refusal, refused
from .secret import Secret

SUCCESS: Final = 80000000
PARTIAL: Final = 80100000  # some tokens failed: `msg` lists illegal_tokens
TOKEN_EXPIRED: Final = 80200003
MAX_MESSAGE: Final = 4096  # bytes, tokens not counted
MAX_TTL: Final = 1_296_000  # 15 days
REFRESH_MARGIN_MS: Final = 5 * 60_000
DEAD_TOKEN_CODES: Final = frozenset({80000004, 80300007})  # app uninstalled; all tokens illegal
TRANSIENT_CODES: Final = frozenset({110, 111, 80000005, 81000001})  # internal, busy, timeout


class HuaweiChannel(HttpChannel):
    vendor = "huawei"
    bad_token_code = 80300007  # all tokens illegal
    dead_token_codes = DEAD_TOKEN_CODES
    transient_codes = TRANSIENT_CODES
    max_batch = 1000

    def __init__(
        self, app_id: str, credentials: HuaweiCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client())
        self._credentials = credentials
        self._auth_url = credentials.auth_endpoint or HUAWEI_AUTH_ENDPOINT
        base = credentials.endpoint or HUAWEI_ENDPOINT
        self._send_url = f"{base}/v1/{credentials.app_id}/messages:send"
        self.tokens = TokenCache(self._fetch_token, clock, margin_ms=REFRESH_MARGIN_MS)

    async def _fetch_token(self) -> IssuedToken:
        now_ms = self.clock.now_ms()
        form = {
            "grant_type": "client_credentials",
            "client_id": self._credentials.app_id,
            "client_secret": self._credentials.app_secret.reveal(),
        }
        answer = await post(self.client, self._auth_url, data=form)
        body = answer.json_object() or {}
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if answer.status == 200 and isinstance(token, str) and isinstance(expires_in, int):
            return IssuedToken(Secret(token), now_ms + expires_in * 1000)
        if answer.status == 200:
            raise AuthFailed(refused(self.vendor, None, "auth: HTTP 200 without a usable token"))
        raise AuthFailed(self.garbage(answer))

    def _message(self, message: VendorMessage, tokens: list[str]) -> dict[str, Any]:
        ttl = message.ttl_seconds(self.clock.now_ms(), MAX_TTL)
        return {
            "token": tokens,
            "data": message.app_data_json(),
            "android": {
                "ttl": f"{ttl}s",
                "urgency": "NORMAL",
                "notification": {
                    "title": message.title,
                    "body": message.content,
                    "click_action": {"type": 3},  # open the app
                },
            },
        }

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        message = delivery.message
        if message.ttl_seconds(self.clock.now_ms(), MAX_TTL) <= 0:
            return local_refusal(self.vendor, 80100004, "the message has expired")
        size = len(json.dumps(self._message(message, []), ensure_ascii=False).encode())
        if size > MAX_MESSAGE:
            return local_refusal(
                self.vendor, 80300008, f"message is {size} bytes, Huawei allows {MAX_MESSAGE}"
            )
        return None

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        # One call per message, carrying the tokens of every delivery of it.
        groups: dict[str, list[int]] = {}
        for index, delivery in enumerate(batch):
            groups.setdefault(delivery.message.message_id, []).append(index)
        results: list[SendResult | None] = [None] * len(batch)
        for indexes in groups.values():
            tokens = [batch[i].token for i in indexes]
            answer = await self._call(batch[indexes[0]].message, tokens)
            for i, result in zip(indexes, self._results(answer, tokens), strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    async def _call(self, message: VendorMessage, tokens: list[str]) -> Answer:
        body = json.dumps(
            {"validate_only": False, "message": self._message(message, tokens)},
            ensure_ascii=False,
        ).encode()

        async def call(token: Secret) -> Answer:
            headers = {
                "authorization": f"Bearer {token.reveal()}",
                "content-type": "application/json;charset=UTF-8",
            }
            return await post(self.client, self._send_url, content=body, headers=headers)

        def rejected(answer: Answer) -> bool:
            return answer.status == 401 or _code(answer) == TOKEN_EXPIRED

        return await with_token(self.tokens, call, rejected)

    def _results(self, answer: Answer, tokens: list[str]) -> list[SendResult]:
        code = _code(answer)
        raw = answer.raw()
        if code == PARTIAL:
            illegal = _illegal_tokens(answer)
            if illegal is not None:
                return [
                    refused(self.vendor, PARTIAL, raw, dead_token=True)
                    if token in illegal
                    else accepted(self.vendor, raw)
                    for token in tokens
                ]
        result = self.native_result(answer, code, success=SUCCESS)
        return [result] * len(tokens)


def _code(answer: Answer) -> int | None:
    body = answer.json_object()
    value = body.get("code") if body else answer.headers.get("nsp_status")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _illegal_tokens(answer: Answer) -> set[str] | None:
    """The tokens a partial success names (its `msg` is itself a JSON text)."""
    msg = (answer.json_object() or {}).get("msg")
    try:
        detail = json.loads(msg) if isinstance(msg, str) else None
    except ValueError:
        return None
    tokens = detail.get("illegal_tokens") if isinstance(detail, dict) else None
    if not isinstance(tokens, list):
        return None
    return {t for t in tokens if isinstance(t, str)}

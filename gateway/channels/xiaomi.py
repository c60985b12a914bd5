"""Xiaomi MiPush: `Authorization: key=<AppSecret>`, a form POST per registration id,
`code` 0 for success; MiPush's own codes are the seeds' codes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from gateway.clock import Clock

from .base import HttpChannel
from .credentials import XIAOMI_ENDPOINT, XiaomiCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery
from .result import SendResult, local_refusal

MAX_TITLE: Final = 50
MAX_DESCRIPTION: Final = 128
MAX_TTL_MS: Final = 14 * 86_400_000  # two weeks, MiPush's default and maximum
TOO_LONG: Final = 10018  # the request exceeds the length limit
BAD_VALUE: Final = 10017
DEAD_TOKEN_CODES: Final = frozenset({20301})  # invalid target
# system error, remote service error, busy, and the four frequency limits
TRANSIENT_CODES: Final = frozenset({1001, 10003, 10009, 10022, 10023, 10024, 10027})


class XiaomiChannel(HttpChannel):
    vendor = "xiaomi"
    bad_token_code = 20301  # invalid target
    dead_token_codes = DEAD_TOKEN_CODES
    transient_codes = TRANSIENT_CODES

    def __init__(
        self, app_id: str, credentials: XiaomiCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client())
        self._credentials = credentials
        self._url = f"{credentials.endpoint or XIAOMI_ENDPOINT}/v3/message/regid"

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        message = delivery.message
        if message.expires_ms <= self.clock.now_ms():
            return local_refusal(self.vendor, BAD_VALUE, "the message has expired")
        if len(message.title) > MAX_TITLE:
            return local_refusal(self.vendor, TOO_LONG, f"title over {MAX_TITLE} characters")
        if len(message.content) > MAX_DESCRIPTION:
            return local_refusal(
                self.vendor, TOO_LONG, f"content over {MAX_DESCRIPTION} characters"
            )
        return None

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        (delivery,) = batch
        message = delivery.message
        ttl_ms = min(message.expires_ms - self.clock.now_ms(), MAX_TTL_MS)
        form = {
            "registration_id": delivery.token,
            "restricted_package_name": self._credentials.package_name,
            "pass_through": "0",
            "notify_type": "-1",
            "title": message.title,
            "description": message.content,
            "payload": message.app_data_json(),
            "time_to_live": str(ttl_ms),
            "extra.id": message.message_id,
            "extra.msg_key": message.msg_key,
        }
        headers = {"authorization": f"key={self._credentials.app_secret.reveal()}"}
        answer = await post(self.client, self._url, data=form, headers=headers)
        return [self._result(answer)]

    def _result(self, answer: Answer) -> SendResult:
        return self.native_result(answer, (answer.json_object() or {}).get("code"))

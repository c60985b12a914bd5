"""Apple Push Notification service: the HTTP/2 provider API with token auth.

One HTTP/2 connection per app, multiplexing every request; an ES256 provider
token signed with the .p8 key, renewed once it is `REFRESH_AFTER_MS` old and
never younger than `MIN_AGE_MS` (Apple: at most every 20, at least every 60 min).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from typing import Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.clock import Clock

from .base import HttpChannel
from .credentials import ApnsCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery
from .result import SendResult, accepted, local_refusal, refused
from .secret import Secret

REFRESH_AFTER_MS: Final = 50 * 60_000
MIN_AGE_MS: Final = 20 * 60_000
MAX_PAYLOAD: Final = 4096
MAX_COLLAPSE_ID: Final = 64
_HEX_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2})+")
_APNS_ID_NAMESPACE = uuid.UUID("6a0c3c1e-6f1d-4a8e-9a43-5f2e0c8b7d21")

# Apple's reasons with a row in the seeds' table (numbered as Apple's old reason table).
REASONS: Final = {
    "PayloadEmpty": 2001,
    "PayloadTooLarge": 2002,
    "BadTopic": 2003,
    "TopicDisallowed": 2004,
    "BadMessageId": 2005,
    "BadExpirationDate": 2006,
    "BadPriority": 2007,
    "MissingDeviceToken": 2008,
    "BadDeviceToken": 2009,
    "DeviceTokenNotForTopic": 2010,
    "Unregistered": 2011,
    "BadCertificateEnvironment": 2013,
    "BadCertificate": 2014,
    "MissingTopic": 2023,
}
TRANSIENT_STATUSES: Final = frozenset({429, 500, 503})


def collapse_id(msg_key: str) -> str:
    """The msg_key, or its SHA-256 when it is longer than APNs allows (64 bytes)."""
    if len(msg_key.encode()) <= MAX_COLLAPSE_ID:
        return msg_key
    return hashlib.sha256(msg_key.encode()).hexdigest()


class ApnsChannel(HttpChannel):
    vendor = "apns"
    bad_token_code = 2009  # BadDeviceToken
    max_batch = 1  # APNs has no batch call; requests multiplex on the one connection
    unavailable_code = 2025  # ConnUnavailable
    connection_lost_code = 2024  # ConnClosed

    def __init__(
        self, app_id: str, credentials: ApnsCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client(http2=True, max_connections=1))
        self._credentials = credentials
        key = load_pem_private_key(credentials.private_key.reveal().encode(), password=None)
        if not isinstance(key, EllipticCurvePrivateKey):  # parse_credentials checked it
            raise TypeError("an APNs key is an EC P-256 key")
        self._key = key
        self._token: tuple[Secret, int] | None = None  # (JWT, issued at ms)
        self.tokens_issued = 0

    def provider_token(self) -> Secret:
        now = self.clock.now_ms()
        if self._token is None or now - self._token[1] >= REFRESH_AFTER_MS:
            claims = {"iss": self._credentials.team_id, "iat": now // 1000}
            encoded = jwt.encode(
                claims, self._key, algorithm="ES256", headers={"kid": self._credentials.key_id}
            )
            self._token = (Secret(encoded), now)
            self.tokens_issued += 1
        return self._token[0]

    def _renew_expired(self, token: Secret) -> bool:
        """Apple says `token` expired: renew it, unless that would be too soon."""
        current = self._token
        if current is None or current[0] != token:
            return True  # already renewed by another request
        if self.clock.now_ms() - current[1] < MIN_AGE_MS:
            return False
        self._token = None
        return True

    @staticmethod
    def payload(delivery: VendorDelivery) -> bytes:
        message = delivery.message
        body = {
            "aps": {"alert": {"title": message.title, "body": message.content}, "sound": "default"},
            **message.app_data(),
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        if not delivery.token:
            return local_refusal(self.vendor, 2008, "no device token")
        if not _HEX_TOKEN.fullmatch(delivery.token):
            return local_refusal(self.vendor, 2009, "the device token is not hexadecimal bytes")
        if delivery.message.expires_ms <= self.clock.now_ms():
            return local_refusal(self.vendor, 2006, "the message has expired")
        size = len(self.payload(delivery))
        if size > MAX_PAYLOAD:
            return local_refusal(
                self.vendor, 2002, f"payload is {size} bytes, APNs allows {MAX_PAYLOAD}"
            )
        return None

    def _headers(self, delivery: VendorDelivery, token: Secret) -> dict[str, str]:
        message = delivery.message
        apns_id = uuid.uuid5(_APNS_ID_NAMESPACE, f"{message.message_id}\n{delivery.token}")
        return {
            "authorization": f"bearer {token.reveal()}",
            "apns-topic": self._credentials.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(message.expires_ms // 1000),
            "apns-collapse-id": collapse_id(message.msg_key),
            "apns-id": str(apns_id),
            "content-type": "application/json",
        }

    async def _post(self, delivery: VendorDelivery, token: Secret) -> Answer:
        url = f"{self._credentials.base_url()}/3/device/{delivery.token}"
        return await post(
            self.client, url, content=self.payload(delivery), headers=self._headers(delivery, token)
        )

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        (delivery,) = batch
        token = self.provider_token()
        answer = await self._post(delivery, token)
        if _reason(answer) == "ExpiredProviderToken" and self._renew_expired(token):
            answer = await self._post(delivery, self.provider_token())
        return [self._result(answer)]

    def _result(self, answer: Answer) -> SendResult:
        if answer.status == 200:
            return accepted(self.vendor, f"apns-id={answer.headers.get('apns-id', '')}")
        reason = _reason(answer)
        if reason is None:
            return self.garbage(answer)
        return refused(
            self.vendor,
            REASONS.get(reason),
            answer.raw(),
            dead_token=answer.status == 410,  # Unregistered / ExpiredToken: gone for good
            transient=answer.status in TRANSIENT_STATUSES,
            retry_after=answer.retry_after(),
        )


def _reason(answer: Answer) -> str | None:
    body = answer.json_object()
    reason = body.get("reason") if body else None
    return reason if isinstance(reason, str) else None

"""Firebase Cloud Messaging, HTTP v1 API, with a service account's OAuth2 token.

The token is our own few lines with PyJWT rather than google-auth: google-auth
refreshes synchronously through `requests` (a thread per refresh under Trio,
and a second HTTP stack), while here the assertion is one signed JWT POSTed
with the same httpx client, under the injected clock tests move across the
token's expiry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.clock import Clock

from .auth import AuthFailed, IssuedToken, TokenCache
from .base import HttpChannel, with_token
from .credentials import FCM_ENDPOINT, FcmCredentials
from .http import Answer, HttpOptions, post
from .message import VendorDelivery
from .result import SendResult, accepted, local_refusal, refused
from .secret import Secret

SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S: Final = 3600
REFRESH_MARGIN_MS: Final = 5 * 60_000
MAX_PAYLOAD: Final = 4096
MAX_TTL: Final = 2_419_200  # 28 days

INVALID_REGISTRATION: Final = 90000002
NOT_REGISTERED: Final = 90000003
INVALID_PACKAGE_NAME: Final = 90000004
MESSAGE_TOO_BIG: Final = 90000007
INVALID_TTL: Final = 90000009
INTERNAL: Final = 90000011
AUTHENTICATION: Final = 90000401


class FcmChannel(HttpChannel):
    vendor = "fcm"
    bad_token_code = INVALID_REGISTRATION  # InvalidRegistration

    def __init__(
        self, app_id: str, credentials: FcmCredentials, clock: Clock, options: HttpOptions
    ) -> None:
        super().__init__(app_id, clock, options, options.client())
        self._account = credentials.service_account
        key = load_pem_private_key(self._account.private_key.reveal().encode(), password=None)
        if not isinstance(key, RSAPrivateKey):  # parse_credentials checked it
            raise TypeError("a service account key is an RSA key")
        self._key = key
        self._token_url = credentials.auth_endpoint or self._account.token_uri
        self._send_url = (
            f"{credentials.endpoint or FCM_ENDPOINT}/v1/projects/"
            f"{self._account.project_id}/messages:send"
        )
        self.tokens = TokenCache(self._fetch_token, clock, margin_ms=REFRESH_MARGIN_MS)

    async def _fetch_token(self) -> IssuedToken:
        now_ms = self.clock.now_ms()
        iat = now_ms // 1000
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._account.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_S,
        }
        headers = {"kid": self._account.private_key_id} if self._account.private_key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        answer = await post(
            self.client, self._token_url, data={"grant_type": GRANT_TYPE, "assertion": assertion}
        )
        body = answer.json_object() or {}
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if answer.status == 200 and isinstance(token, str) and isinstance(expires_in, int):
            return IssuedToken(Secret(token), now_ms + expires_in * 1000)
        if answer.status == 200:  # never keep a body that may hold a token
            raise AuthFailed(refused(self.vendor, None, "auth: HTTP 200 without a usable token"))
        if 400 <= answer.status < 500:  # invalid_grant, a revoked key, ...
            raise AuthFailed(refused(self.vendor, AUTHENTICATION, f"auth: {answer.raw()}"))
        raise AuthFailed(self.garbage(answer))

    def _body(self, delivery: VendorDelivery, ttl: int) -> bytes:
        message = delivery.message
        body = {
            "message": {
                "token": delivery.token,
                "notification": {"title": message.title, "body": message.content},
                "data": {
                    "id": message.message_id,
                    "msg_key": message.msg_key,
                    "ext": json.dumps(dict(message.ext), ensure_ascii=False),
                },
                "android": {"ttl": f"{ttl}s", "priority": "HIGH"},
                "apns": {"headers": {"apns-expiration": str(message.expires_ms // 1000)}},
            }
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    def _ttl(self, delivery: VendorDelivery) -> int:
        return delivery.message.ttl_seconds(self.clock.now_ms(), MAX_TTL)

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        if self._ttl(delivery) <= 0:
            return local_refusal(self.vendor, INVALID_TTL, "the message has expired (ttl 0)")
        size = len(self._body(delivery, MAX_TTL))
        if size > MAX_PAYLOAD:
            return local_refusal(
                self.vendor, MESSAGE_TOO_BIG, f"message is {size} bytes, FCM allows {MAX_PAYLOAD}"
            )
        return None

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        (delivery,) = batch
        body = self._body(delivery, self._ttl(delivery))

        async def call(token: Secret) -> Answer:
            headers = {
                "authorization": f"Bearer {token.reveal()}",
                "content-type": "application/json",
            }
            return await post(self.client, self._send_url, content=body, headers=headers)

        def rejected(answer: Answer) -> bool:  # our access token, not the app's setup
            return answer.status == 401 and _error(answer)[0] != "THIRD_PARTY_AUTH_ERROR"

        return [self._result(await with_token(self.tokens, call, rejected))]

    def _result(self, answer: Answer) -> SendResult:
        if answer.status == 200:
            name = (answer.json_object() or {}).get("name")
            return accepted(self.vendor, name) if isinstance(name, str) else self.garbage(answer)
        code, fields, text = _error(answer)
        if code is None:
            return self.garbage(answer)
        raw, retry_after = answer.raw(), answer.retry_after()
        if code == "UNREGISTERED" or answer.status == 404:
            return refused(self.vendor, NOT_REGISTERED, raw, dead_token=True)
        if code in ("UNAVAILABLE", "INTERNAL") or answer.status in (500, 503):
            return refused(self.vendor, INTERNAL, raw, transient=True, retry_after=retry_after)
        if answer.status == 401 or code in ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"):
            return refused(self.vendor, AUTHENTICATION, raw)
        if code == "QUOTA_EXCEEDED" or answer.status == 429:
            return refused(self.vendor, None, raw, transient=True, retry_after=retry_after)
        if code == "INVALID_ARGUMENT":
            return refused(
                self.vendor,
                _invalid_argument_code(fields, text),
                raw,
                dead_token=_names_token(fields, text),
            )
        return refused(self.vendor, None, raw)


def _names_token(fields: list[str], text: str) -> bool:
    return "message.token" in fields or "registration token" in text


def _invalid_argument_code(fields: list[str], text: str) -> int | None:
    """INVALID_ARGUMENT covers the legacy errors; the field violation (or else the
    message) tells which one it was."""
    if _names_token(fields, text):
        return INVALID_REGISTRATION
    if any("package" in f for f in fields) or "package name" in text:
        return INVALID_PACKAGE_NAME
    if any(f.endswith("ttl") for f in fields) or re.search(r"\bttl\b", text):
        return INVALID_TTL
    if "too big" in text or "too large" in text or "message size" in text:
        return MESSAGE_TOO_BIG
    return None


def _error(answer: Answer) -> tuple[str | None, list[str], str]:
    """(FCM errorCode or else the status, field violations, lowercased message)."""
    error = (answer.json_object() or {}).get("error")
    if not isinstance(error, dict):
        return None, [], ""
    code: Any = error.get("status")
    fields: list[str] = []
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("errorCode"), str):
            code = detail["errorCode"]
        violations = detail.get("fieldViolations")
        for violation in violations if isinstance(violations, list) else []:
            if isinstance(violation, dict) and isinstance(violation.get("field"), str):
                fields.append(violation["field"])
    message = error.get("message")
    text = message.lower() if isinstance(message, str) else ""
    return (code if isinstance(code, str) else None), fields, text

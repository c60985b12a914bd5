"""An FCM stand-in: the OAuth2 token endpoint (checks the RS256 assertion against
the service account's public key: iss, scope, aud, iat, exp) and the v1 send
endpoint (checks the bearer token, the message shape, `android.ttl`)."""

from __future__ import annotations

import re
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from starlette.requests import Request

from gateway.clock import Clock

from .http1 import Reply, StandIn, form, json_body

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
TOKEN_PATH = "/token"


def fcm_error(status: int, code: str, message: str = "", field: str | None = None) -> Reply:
    """An FCM v1 error body, as Google shapes it."""
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
    ]
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    status_name = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}.get(
        status, code
    )
    return Reply(
        {"error": {"code": status, "message": message, "status": status_name, "details": details}},
        status,
    )


class FcmStandIn(StandIn):
    def __init__(
        self, public_key: RSAPublicKey, *, client_email: str, project_id: str, clock: Clock
    ) -> None:
        super().__init__()
        self.public_key = public_key
        self.client_email = client_email
        self.project_id = project_id
        self.clock = clock
        self.expires_in = 3600
        self.issued: list[str] = []  # access tokens, in order
        self.revoked: set[str] = set()  # tokens the send endpoint answers 401 for
        self.messages: list[dict[str, Any]] = []
        self.routes = {
            TOKEN_PATH: self._token,
            f"/v1/projects/{project_id}/messages:send": self._send,
        }

    @property
    def token_uri(self) -> str:
        return self.base_url + TOKEN_PATH

    async def _token(self, request: Request) -> Reply:
        fields = await form(request)
        self.expect(
            fields.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "token request: bad grant_type",
        )
        try:
            claims = jwt.decode(
                fields.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                options={
                    "require": ["iss", "scope", "aud", "iat", "exp"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            self.problem(f"assertion rejected: {exc}")
            return Reply({"error": "invalid_grant"}, 400)
        self.expect(claims["iss"] == self.client_email, "assertion: iss is not client_email")
        self.expect(claims["scope"] == SCOPE, "assertion: wrong scope")
        self.expect(claims["exp"] - claims["iat"] <= 3600, "assertion lives over an hour")
        self.expect(
            abs(claims["iat"] * 1000 - self.clock.now_ms()) <= 60_000, "assertion: iat is not now"
        )
        if self.auth_answer is not None:
            return self.auth_answer
        token = f"ya29.standin-{len(self.issued)}"
        self.issued.append(token)
        return Reply({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    async def _send(self, request: Request) -> Reply:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.revoked:
            return fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication")
        body = await json_body(request)
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("token"), str):
            self.problem("send: no message.token")
            return fcm_error(400, "INVALID_ARGUMENT", "no token", "message.token")
        self.messages.append(message)
        data = message.get("data", {})
        self.expect(
            isinstance(data, dict) and all(isinstance(v, str) for v in data.values()),
            "data values must be strings",
        )
        self.expect(isinstance(data, dict) and "id" in data, "data carries no message id")
        ttl = message.get("android", {}).get("ttl", "")
        match = re.fullmatch(r"(\d+)s", ttl) if isinstance(ttl, str) else None
        if match is None or not 0 <= int(match.group(1)) <= 2_419_200:
            self.problem(f"android.ttl invalid: {ttl!r}")
        answer = self.answers.get(message["token"])
        if answer is not None:
            return answer
        return Reply({"name": f"projects/{self.project_id}/messages/{len(self.messages)}"})

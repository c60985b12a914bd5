"""An APNs stand-in: HTTP/2 over TLS (a trustme certificate, ALPN h2), spoken
directly with h2 so a test controls the connection itself: stream resets,
dropped connections, answers held until several streams are open at once.

It checks what Apple checks: the provider token (ES256, `kid`, `iss`, `iat`,
signature against the public key), `apns-topic`, `apns-push-type`,
`apns-expiration`, `apns-id`, `apns-collapse-id`, the path and the JSON body.
"""

from __future__ import annotations

import json
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import jwt
import trio
import trustme
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

from gateway.clock import Clock

TOKEN_LIFETIME_MS = 3_600_000


@dataclass
class ApnsReply:
    status: int = 200
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body instead of {"reason": ...}
    # answer | reset (RST_STREAM) | truncate (part of a body, then RST_STREAM) |
    # drop (close the TCP connection)
    action: str = "answer"


@dataclass
class ApnsRequest:
    device_token: str
    headers: dict[str, str]
    body: dict[str, Any]
    provider_token: str


class ApnsStandIn:
    def __init__(
        self,
        ca: trustme.CA,
        public_key: EllipticCurvePublicKey,
        *,
        team_id: str,
        key_id: str,
        topic: str,
        clock: Clock,
    ) -> None:
        self._server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(self._server_context)
        self._server_context.set_alpn_protocols(["h2"])
        self.public_key = public_key
        self.team_id, self.key_id, self.topic = team_id, key_id, topic
        self.clock = clock
        self.port = 0
        self.problems: list[str] = []
        self.requests: list[ApnsRequest] = []
        self.answers: dict[str, ApnsReply] = {}
        self.connections = 0
        self.hold_until_streams = 0  # > 0: answer nothing until that many requests wait
        self._waiting: list[tuple[h2.connection.H2Connection, int, ApnsReply, trio.Event]] = []

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def provider_tokens(self) -> list[str]:
        return [r.provider_token for r in self.requests]

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                trio.serve_ssl_over_tcp, self._connection, 0, self._server_context
            )
            self.port = listeners[0].transport_listener.socket.getsockname()[1]
            task_status.started()

    async def _connection(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        self.connections += 1
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        pending: dict[int, tuple[dict[str, str], bytearray]] = {}
        send_lock = trio.Lock()  # one writer at a time on the TLS stream

        async def flush() -> None:
            async with send_lock:
                data = conn.data_to_send()
                if data:
                    await stream.send_all(data)

        try:
            await flush()
            async with trio.open_nursery() as nursery:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            pending[event.stream_id] = (dict(event.headers), bytearray())
                        elif isinstance(event, h2.events.DataReceived):
                            pending[event.stream_id][1].extend(event.data)
                            conn.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id
                            )
                        elif isinstance(event, h2.events.StreamEnded):
                            headers, body = pending.pop(event.stream_id)
                            reply = self._handle(headers, bytes(body))
                            if reply.action == "drop":
                                await stream.aclose()
                                return
                            nursery.start_soon(self._answer, flush, conn, event.stream_id, reply)
                    await flush()
        # except*: inside the nursery a lost connection (the client killed) comes grouped.
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def _answer(
        self,
        flush: Callable[[], Awaitable[None]],
        conn: h2.connection.H2Connection,
        stream_id: int,
        reply: ApnsReply,
    ) -> None:
        if self.hold_until_streams:
            released = trio.Event()
            self._waiting.append((conn, stream_id, reply, released))
            if len(self._waiting) >= self.hold_until_streams:
                for *_, event in self._waiting:
                    event.set()
                self._waiting.clear()
            await released.wait()
        if reply.action == "reset":
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif reply.action == "truncate":  # headers promise a body that never ends
            conn.send_headers(
                stream_id,
                [
                    (":status", "400"),
                    ("content-type", "application/json"),
                    ("content-length", "64"),
                ],
            )
            conn.send_data(stream_id, b'{"reason":"Bad')
            conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        else:
            headers = [(":status", str(reply.status)), *reply.headers.items()]
            body = reply.body
            if body is None and reply.reason is not None:
                body = json.dumps({"reason": reply.reason}).encode()
            if body:
                headers.append(("content-type", "application/json"))
                conn.send_headers(stream_id, headers)
                conn.send_data(stream_id, body, end_stream=True)
            else:
                conn.send_headers(stream_id, headers, end_stream=True)
        try:
            await flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _handle(self, headers: dict[str, str], body: bytes) -> ApnsReply:
        path = headers.get(":path", "")
        match = re.fullmatch(r"/3/device/([0-9a-fA-F]+)", path)
        if headers.get(":method") != "POST" or match is None:
            self.problems.append(f"bad request line {headers.get(':method')} {path}")
            return ApnsReply(404, "BadPath")
        device_token = match.group(1)
        bearer = headers.get("authorization", "")
        provider_token = bearer.removeprefix("bearer ")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        self.requests.append(ApnsRequest(device_token, headers, payload or {}, provider_token))
        auth = self._check_token(bearer)
        if auth is not None:
            return auth
        self._check_headers(headers)
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            self.problems.append("body is not a JSON object with aps")
        elif not isinstance(payload.get("id"), str):
            self.problems.append("payload carries no message id")
        success = ApnsReply(200, headers={"apns-id": headers.get("apns-id", "")})
        return self.answers.get(device_token, success)

    def _check_token(self, bearer: str) -> ApnsReply | None:
        if not bearer.startswith("bearer "):
            self.problems.append("no bearer provider token")
            return ApnsReply(403, "MissingProviderToken")
        token = bearer.removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            self.problems.append(f"provider token rejected: {exc}")
            return ApnsReply(403, "InvalidProviderToken")
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            self.problems.append("provider token has the wrong kid or iss")
            return ApnsReply(403, "InvalidProviderToken")
        age_ms = self.clock.now_ms() - claims["iat"] * 1000
        if age_ms > TOKEN_LIFETIME_MS:
            return ApnsReply(403, "ExpiredProviderToken")
        if age_ms < -60_000:
            self.problems.append("provider token issued in the future")
        return None

    def _check_headers(self, headers: dict[str, str]) -> None:
        expect = self.problems.append
        if headers.get("apns-topic") != self.topic:
            expect("apns-topic is not the app's topic")
        if headers.get("apns-push-type") not in ("alert", "background"):
            expect("apns-push-type missing or unknown")
        if not headers.get("apns-expiration", "").isdigit():
            expect("apns-expiration is not UNIX seconds")
        try:
            uuid.UUID(headers.get("apns-id", ""))
        except ValueError:
            expect("apns-id is not a UUID")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            expect("apns-collapse-id over 64 bytes")

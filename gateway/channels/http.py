"""The HTTP side every adapter shares: clients with bounded time and connections,
answers read up to a size limit, Retry-After, and the httpx errors sorted into
"could not connect" and "lost the connection"."""

from __future__ import annotations

import email.utils
import json
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any, Final

import httpx
import trio

from .result import bound_raw

MAX_ANSWER_BYTES: Final = 64 * 1024  # a vendor answer is a few hundred bytes
MAX_RETRY_AFTER: Final = 3600.0

# httpx logs every request URL at INFO, and an APNs URL holds the device token;
# hpack logs every header at DEBUG, the provider token included. Neither may
# reach the operator's logs.
for _name in ("httpx", "hpack"):
    logging.getLogger(_name).setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How adapters reach vendors: timeouts (s), connections, TLS trust (tests pass a CA)."""

    connect_timeout: float = 5.0
    request_timeout: float = 10.0
    max_connections: int = 8
    verify: ssl.SSLContext | bool = True
    trust_env: bool = False  # True: honour HTTPS_PROXY / SSL_CERT_FILE from the environment

    def client(
        self, *, http2: bool = False, max_connections: int | None = None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            http1=not http2,
            http2=http2,
            verify=self.verify,
            timeout=httpx.Timeout(self.request_timeout, connect=self.connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections or self.max_connections,
                max_keepalive_connections=max_connections or self.max_connections,
            ),
            follow_redirects=False,
            trust_env=self.trust_env,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A vendor's HTTP answer, body read up to `MAX_ANSWER_BYTES`."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool = False

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object, or None for anything else (garbage, cut short)."""
        if self.truncated:
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def raw(self) -> str:
        text = self.body.decode("utf-8", errors="replace")
        more = " [cut]" if self.truncated else ""
        return bound_raw(f"HTTP {self.status} {text}{more}".rstrip())

    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), within [0, 1 h]."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    delta = when.timestamp() - (time.time() if now is None else now)
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


async def post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> Answer:
    """POST and read the answer, never more than `MAX_ANSWER_BYTES` of it.

    Raises `httpx.TransportError` when the request cannot be completed.
    """
    async with client.stream("POST", url, **kwargs) as response:
        body = bytearray()
        truncated = False
        # Past the bound, cancel the read rather than break out of the loop: the
        # cancellation unwinds httpx's nested async generators, where a `break`
        # would leave them suspended for the garbage collector.
        with trio.CancelScope() as reading:
            async for chunk in response.aiter_bytes():
                if truncated:
                    continue
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    truncated = True
                    del body[MAX_ANSWER_BYTES:]
                    reading.cancel()
        return Answer(response.status_code, response.headers, bytes(body), truncated)


def could_not_connect(exc: httpx.HTTPError) -> bool:
    """True when no request reached the vendor (connect, TLS or pool failure); otherwise
    the connection was lost or timed out with the request possibly delivered."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def describe(exc: httpx.HTTPError) -> str:
    """A loggable description: the error type only (messages may carry URLs with tokens)."""
    return f"connection: {type(exc).__name__}"

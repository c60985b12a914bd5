"""Reading a request body at the edge: bounded in bytes and in time before it is parsed.

A route's body limit is checked against Content-Length before a byte is read
(413 at once), then against the bytes actually streamed (a chunked body has no
length); the whole body must arrive within the body timeout (408). Bytes are
decoded as UTF-8 as they come (RFC 8259: JSON exchanged between systems is
UTF-8), so nothing waits for the last chunk to start that work.
"""

from __future__ import annotations

import codecs
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from fastapi import Request

from .errors import ApiError

CLOSE = {"Connection": "close"}


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "body_too_large",
        f"the request body is over this route's limit of {limit} bytes",
        headers=CLOSE,
    )


def not_utf8() -> ApiError:
    return ApiError(400, "invalid_json", "the body is not UTF-8 text", headers=CLOSE)


def declared_length(request: Request) -> int | None:
    """Content-Length as an int, None when absent; a malformed one is a 400."""
    return parse_length(request.headers.get("content-length"))


def parse_length(raw: str | None) -> int | None:
    """A Content-Length header's value as an int (None: absent); a malformed one is a 400."""
    if raw is None:
        return None
    if not raw.isdigit() or not raw.isascii() or len(raw) > 18:
        raise ApiError(400, "invalid_request", "Content-Length: not a byte count", headers=CLOSE)
    return int(raw)


async def read_text(request: Request, *, limit: int, timeout: float) -> str:
    """The body decoded as UTF-8, at most `limit` bytes, arrived within `timeout` seconds."""
    return await receive_text(
        request.receive, request.headers.get("content-length"), limit=limit, timeout=timeout
    )


async def receive_text(
    receive: Callable[[], Awaitable[Any]],
    content_length: str | None,
    *,
    limit: int,
    timeout: float,
    at_hand: Callable[[], bytes | None] | None = None,
) -> str:
    """read_text on an ASGI `receive` and the raw Content-Length header.

    `at_hand()`, if given, returns the whole body when it has arrived already
    (taking it), else None: then no deadline or incremental decoding is needed.
    """
    length = parse_length(content_length)
    if length is not None and length > limit:
        raise too_large(limit)
    whole = None if at_hand is None else at_hand()
    if whole is not None:
        if len(whole) > limit:
            raise too_large(limit)
        try:
            return whole.decode("utf-8")
        except UnicodeDecodeError:
            raise not_utf8() from None
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    parts: list[str] = []
    received = 0
    with trio.move_on_after(timeout) as scope:
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: the client is gone
                raise ApiError(400, "invalid_request", "the client went away mid-body")
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            more = bool(message.get("more_body", False))
            try:
                parts.append(decoder.decode(chunk, final=not more))
            except UnicodeDecodeError:
                raise not_utf8() from None
            if not more:
                break
    if scope.cancelled_caught:
        raise ApiError(
            408,
            "request_timeout",
            f"the request body did not arrive within {timeout:g} seconds",
            headers=CLOSE,
        )
    return "".join(parts)

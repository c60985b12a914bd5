"""Reading messages: the message list, the search and the push details.

Everything older than 30 days (created_at < now - 30 days, by the gateway's
clock) is invisible here whether or not the retention purge has run yet.
"""

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from gateway.store import retention_cutoff
from protocol import is_valid_id

from .context import Ctx, CurrentApp
from .errors import AUTHENTICATED, ApiError, error_responses
from .views import list_item, message_details

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_CURSOR_PREFIX = "s:"
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER: a cursor past it is not one this API gave


class MessageItem(BaseModel):
    message_id: str
    msg_key: str
    push_type: str
    delivery_type: str
    target_id: str
    title: str
    created_at: str
    status: int


class MessageCollection(BaseModel):
    items: list[MessageItem]
    next_cursor: str | None


def encode_cursor(seq: int) -> str:
    """An opaque cursor: the next page holds messages created before `seq`."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    bad = ApiError(
        400,
        "invalid_request",
        "cursor: not a cursor this API gave (pass next_cursor as it is)",
        field="cursor",
    )
    if not cursor or len(cursor) > 64:
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise bad from None
    digits = text.removeprefix(_CURSOR_PREFIX)
    if digits == text or not digits.isdigit() or not digits.isascii() or len(digits) > 19:
        raise bad
    seq = int(digits)
    if not 1 <= seq <= MAX_SEQ:
        raise bad
    return seq


def _search_keys(target_id: str | None, msg_key: str | None) -> tuple[str, str]:
    """Both search fields, or a 400 naming the missing (then the malformed) one."""
    given = {"target_id": target_id, "msg_key": msg_key}
    for name, other in (("target_id", "msg_key"), ("msg_key", "target_id")):
        if given[name] is None:
            raise ApiError(
                400,
                "invalid_request",
                f"{name}: required with {other} (the search takes both)",
                field=name,
            )
    for name, value in given.items():
        if not is_valid_id(value or ""):
            raise ApiError(
                400,
                "invalid_request",
                f"{name}: must be 1-128 characters with no whitespace or control characters",
                field=name,
            )
    return target_id or "", msg_key or ""


router = APIRouter(tags=["messages"], responses=error_responses(*AUTHENTICATED))


@router.get("/v1/messages", response_model=MessageCollection)
async def list_or_search_messages(
    ctx: Ctx,
    app: CurrentApp,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Page size, 1-100 (list only).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page (list only).")
    ] = None,
    target_id: Annotated[
        str | None, Query(description="Search: the exact device ID or user ID.")
    ] = None,
    msg_key: Annotated[
        str | None, Query(description="Search: the exact customer message ID.")
    ] = None,
) -> dict[str, Any]:
    """The message list, or the search when `target_id` and `msg_key` are given.

    The list: `simple` and `template` messages of the last 30 days, newest
    first, `limit` per page; pass `cursor=next_cursor` for the next page
    (`null` on the last one). Messages pushed while you page never make a
    page repeat or skip an item: they are newer than your first page.

    The search: the one message with that exact target and customer
    message ID (`multiple` pushes included) created in the last 30 days;
    0 or 1 items. Broadcasts are never listed nor found.
    """
    if target_id is not None or msg_key is not None:
        target, key = _search_keys(target_id, msg_key)
        found = await ctx.store.search_message(app.app_id, target, key)
        return {"items": [] if found is None else [list_item(found)], "next_cursor": None}
    before = None if cursor is None else decode_cursor(cursor)
    rows = await ctx.store.list_messages(app.app_id, before_seq=before, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [list_item(m) for m in page],
        "next_cursor": encode_cursor(page[-1].seq) if more else None,
    }


@router.get("/v1/messages/{message_id}", responses=error_responses(404))
async def get_message(message_id: str, ctx: Ctx, app: CurrentApp) -> dict[str, Any]:
    """Push details: the list fields plus status name and description, expiry,
    modification time and one entry per device delivery."""
    found = await ctx.store.get_message(app.app_id, message_id)
    if found is None or found[0].created_at < retention_cutoff(ctx.clock.now_ms()):
        raise ApiError(404, "not_found", f"no message {message_id[:128]!r} in this app")
    message, deliveries = found
    answers = []
    if any(d.channel != "self" for d in deliveries):
        answers = await ctx.store.vendor_answers(app.app_id, message.seq)
    return message_details(message, deliveries, answers)

"""Helpers of the store tests: a push in one line, waiting for a deferred ack."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from gateway.store import App, Message, NewMessage, Store
from tests.harness import SAFETY_NET


def simple(target: str, title: str = "title", **fields: object) -> NewMessage:
    kind = "user" if target.startswith("user") else "android"
    return NewMessage(
        "simple", str(fields.pop("delivery_type", kind)), target, title, "content", **fields
    )  # type: ignore[arg-type]


async def push_one(store: Store, app: App, item: NewMessage) -> Message:
    (outcome,) = await store.insert_messages(app, [item])
    return outcome.message


async def ack(store: Store, app: App, device: str, ids: Sequence[str]) -> int:
    """Queue an ack and wait for its commit; how many deliveries it changed."""
    done = trio.Event()
    changed: list[int] = []

    def recorded(_: Sequence[str], count: int, error: BaseException | None) -> None:
        assert error is None, error
        changed.append(count)
        done.set()

    store.queue_ack_nowait(app.app_id, device, ids, recorded)
    with trio.fail_after(SAFETY_NET):
        await done.wait()
    return changed[0]


async def page_ids(store: Store, app: App, device: str, **bounds: object) -> list[str]:
    _, page = await store.pending_page(
        app.app_id,
        device,
        after_seq=int(bounds.pop("after_seq", 0)),
        limit=100,
        **bounds,  # type: ignore[arg-type]
    )
    return [m.title for m in page]

"""outbox.encode_push gives the bytes of protocol.encode(Push(...)), its parts reused or not."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from gateway.ids import new_id
from gateway.outbox import encode_push
from gateway.store import Message
from protocol import Push, decode, encode


def _message(**changes: object) -> Message:
    """What encode_push reads of a Message (the store's record may grow other fields)."""
    fields: dict[str, object] = {
        "message_id": new_id(1_795_000_000_000),
        "msg_key": "k",
        "push_type": "multiple",
        "title": "t",
        "content": "c",
        "ext": {"a": "b"},
        "created_at": 1_795_000_000_000,
        "expires_at": 1_795_000_360_000,
    }
    fields.update(changes)
    return cast(Message, SimpleNamespace(**fields))


def _expected(m: Message) -> bytes:
    return encode(
        Push(
            id=m.message_id,
            msg_key=m.msg_key,
            push_type=m.push_type,
            title=m.title,
            content=m.content,
            ext=m.ext,
            created=m.created_at,
            expires=m.expires_at,
        )
    )


@pytest.mark.parametrize(
    "changes",
    [
        [{}, {"message_id": new_id(1), "msg_key": "k2"}, {"message_id": new_id(2)}],
        [{"title": "é" * 40}, {"title": "x" * 300, "content": "y" * 60_000}, {"ext": {}}],
        [{"ext": {"a": "c"}}, {"ext": {"a": "b"}}, {"push_type": "simple", "created_at": 5}],
    ],
)
def test_encode_push_is_the_encoded_push_frame(changes: list[dict[str, object]]) -> None:
    for change in changes:
        message = _message(**change)
        assert encode_push(message) == _expected(message)
        assert encode_push(message) == _expected(message)  # the same object again
        assert isinstance(decode(encode_push(message)), Push)

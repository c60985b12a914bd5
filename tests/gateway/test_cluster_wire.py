"""A stored message as a hint's payload between nodes: exact round trip, strict decoding."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.cluster_wire import decode_message, encode_message
from gateway.store import Message

texts = st.text(max_size=40)
messages = st.builds(
    Message,
    seq=st.integers(0, 2**62),
    message_id=texts,
    app_id=texts,
    msg_key=texts,
    push_type=texts,
    delivery_type=texts,
    target_id=texts,
    title=texts,
    content=texts,
    ext=st.dictionaries(texts, texts, max_size=5),
    created_at=st.integers(0, 2**62),
    expires_at=st.integers(0, 2**62),
    modified_at=st.integers(0, 2**62),
    status=st.integers(-1, 99),
    revoked=st.booleans(),
    verification=st.none() | texts,
)


@given(messages)
def test_a_message_reads_back_exactly(message: Message) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert decoded.ext is not message.ext  # the receiver never shares the sender's dict


def test_what_is_not_a_message_record_is_refused() -> None:
    good = list(msgpack.unpackb(encode_message(Message(1, "m", "a", "k", "simple",
        "android", "d", "t", "c", {"x": "y"}, 1, 2, 3, 0))))  # fmt: skip
    with pytest.raises(ValueError, match="malformed"):
        decode_message(b"\xc1")
    with pytest.raises(ValueError, match="not a message record"):
        decode_message(msgpack.packb(good[:-1]))
    for index, bad in ((0, "1"), (0, True), (7, 5), (9, {"x": 1})):
        broken = list(good)
        broken[index] = bad
        with pytest.raises(ValueError, match="message payload"):
            decode_message(msgpack.packb(broken))

"""Hypothesis strategies for the protocol tests: every frame type, and arbitrary
MessagePack values."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from protocol import (
    Ack,
    Bind,
    Bound,
    Bye,
    Error,
    Frame,
    Hello,
    Ping,
    Pong,
    Push,
    Unbind,
    Unbound,
    Welcome,
    is_valid_id,
)

# Every integer MessagePack can carry.
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
texts = st.text(max_size=40)
# IDs: 1-128 characters, no whitespace or control characters (CONTRACT.md §1).
ids = st.text(
    alphabet=st.characters(exclude_categories=("C", "Z")), min_size=1, max_size=128
).filter(is_valid_id)
ext_maps = st.dictionaries(texts, texts, max_size=5)

hellos = st.builds(Hello, v=ints, app=texts, device=texts, platform=texts, token=texts)
acks = st.builds(Ack, ids=st.lists(texts, max_size=10).map(tuple))
binds = st.builds(Bind, user=ids, sig=texts)
welcomes = st.builds(Welcome, session=texts, heartbeat=ints, server_time=ints)
pushes = st.builds(
    Push,
    id=texts,
    msg_key=texts,
    push_type=texts,
    title=texts,
    content=texts,
    ext=ext_maps,
    created=ints,
    expires=ints,
)
bounds = st.builds(Bound, user=texts)
errors = st.builds(Error, code=texts, message=texts)
byes = st.builds(Bye, reason=texts)

FRAME_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "hello": hellos,
    "ack": acks,
    "bind": binds,
    "unbind": st.just(Unbind()),
    "ping": st.just(Ping()),
    "welcome": welcomes,
    "push": pushes,
    "bound": bounds,
    "unbound": st.just(Unbound()),
    "pong": st.just(Pong()),
    "error": errors,
    "bye": byes,
}

frames: st.SearchStrategy[Frame] = st.one_of(*FRAME_STRATEGIES.values())

# Any value MessagePack can encode (floats included; NaN is fine where only
# "does not crash" is asserted).
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(), texts, st.binary(max_size=40))
msgpack_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(texts, children, max_size=5),
    ),
    max_leaves=20,
)

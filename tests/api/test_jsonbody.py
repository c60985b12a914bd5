"""The sliced JSON decoder: the same values as json.loads, bounded pieces, clear errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.api.jsonbody import MAX_ITEMS, PIECE, STRING_PIECE, WHOLE, NotJson, parse_json

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)
PAD = "x" * (WHOLE + 10)  # makes any body large enough for the sliced path


def run(text: str) -> Any:
    return trio.run(parse_json, text)


@settings(max_examples=150, deadline=None)
@given(
    members=st.dictionaries(st.text(), values, max_size=8),
    targets=st.lists(values, max_size=30),
    ensure_ascii=st.booleans(),
    indent=st.sampled_from([None, 0, 2]),
)
def test_a_large_body_decodes_to_what_json_loads_gives(
    members: dict[str, Any], targets: list[Any], ensure_ascii: bool, indent: int | None
) -> None:
    body = {**members, "targets": targets, "pad": PAD}
    text = json.dumps(body, ensure_ascii=ensure_ascii, indent=indent)
    assert len(text) > WHOLE
    assert run(text) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": 1} x',
        '{"a": 1}{"b": 2}',
        '{"a": [1, 2,]}',
        '{"a": "unterminated}',
        "[" * 50_000,
        "",
    ],
)
@pytest.mark.parametrize("large", [False, True])
def test_junk_is_not_json_on_both_paths(text: str, large: bool) -> None:
    if large:
        text = '{"pad": "' + PAD + '", "b": ' + (text or "}")
    with pytest.raises(NotJson):
        run(text)


def test_a_number_cut_by_the_window_is_read_whole() -> None:
    digits = "1" * 4200  # longer than the first window (4096)
    text = '{"pad": "' + PAD + '", "n": [' + digits + ", 2]}"
    assert run(text)["n"] == [int(digits), 2]


def test_pieces_and_counts_are_bounded() -> None:
    big_value = '{"pad": "' + PAD + '", "t": [' + "[" + "0," * PIECE + "0]]}"
    with pytest.raises(NotJson, match="longer than"):
        run(big_value)
    big_string = '{"s": "' + "y" * (STRING_PIECE + 1) + '"}'
    with pytest.raises(NotJson, match="longer than"):
        run(big_string)
    many = '{"pad": "' + PAD + '", "t": [' + ",".join(["0"] * (MAX_ITEMS + 1)) + "]}"
    with pytest.raises(NotJson, match="more than 1000 elements"):
        run(many)
    duplicate_keys = "{" + ",".join(['"a": 0'] * (MAX_ITEMS + 1)) + ', "pad": "' + PAD + '"}'
    with pytest.raises(NotJson, match="more than 1000 members"):
        run(duplicate_keys)


async def test_a_large_body_yields_to_other_tasks_while_it_is_decoded() -> None:
    targets = [{"target_id": f"device-{i}", "template_kv": {"k": "v" * 2000}} for i in range(900)]
    text = json.dumps({"delivery_type": "android", "targets": targets})
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        assert await parse_json(text) == json.loads(text)
        nursery.cancel_scope.cancel()
    # ~1.8 MB decoded in 64 KiB slices: the other task ran between them.
    assert ticks - before >= len(text) // (64 * 1024) - 1


async def test_the_sliced_path_keeps_only_what_the_caller_wants() -> None:
    seen: list[tuple[str, int]] = []

    def element(key: str, index: int, value: Any) -> Any:
        seen.append((key, index))
        if value == "bad":
            raise ValueError(f"{key}.{index}")
        return str(value).upper()

    text = json.dumps({"keep": ["a", "b"], "drop": [[1] * 10, {"x": 2}], "pad": PAD})
    value = await parse_json(text, members={"keep", "pad"}, element=element)
    assert value == {"keep": ["A", "B"], "pad": PAD}
    assert seen == [("keep", 0), ("keep", 1)]  # a dropped member's elements are not kept
    with pytest.raises(ValueError, match=r"keep\.1"):
        await parse_json(json.dumps({"keep": ["ok", "bad", "never"], "pad": PAD}), element=element)

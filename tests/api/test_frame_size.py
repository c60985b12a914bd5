"""push_frame_size equals the length of the encoded push frame it stands for."""

from __future__ import annotations

import pytest

from gateway.api.frame_size import (
    ID_PLACEHOLDER,
    TIME_PLACEHOLDER,
    ext_size,
    push_frame_size,
    str_size,
)
from protocol import Push, encode

# Lengths around every MessagePack str header boundary, ASCII and not.
TEXTS = ["", "a", "a" * 31, "a" * 32, "a" * 255, "a" * 256, "a" * 65_535, "a" * 65_536]
TEXTS += ["é" * 15, "é" * 16, "\U0001f600" * 64, "中" * 21_845, "中" * 21_846]


@pytest.mark.parametrize("text", TEXTS)
def test_str_size_is_the_encoded_size(text: str) -> None:
    assert str_size(text) == len(encode(_push(title=text))) - len(encode(_push(title=""))) + 1


@pytest.mark.parametrize("msg_key", [None, "k", "k" * 128])
@pytest.mark.parametrize("ext", [{}, {"a": "b"}, {f"k{i}": "v" * i for i in range(40)}])
@pytest.mark.parametrize("text", ["", "t" * 40, "é" * 300])
def test_push_frame_size_is_the_encoded_size(
    msg_key: str | None, ext: dict[str, str], text: str
) -> None:
    frame = _push(msg_key=msg_key or ID_PLACEHOLDER, title=text, content=text[::-1], ext=ext)
    size = push_frame_size(msg_key, "multiple", text, text[::-1], ext_size(ext))
    assert size == len(encode(frame))


def _push(
    *, msg_key: str = "", title: str = "", content: str = "", ext: dict[str, str] | None = None
) -> Push:
    return Push(
        id=ID_PLACEHOLDER,
        msg_key=msg_key,
        push_type="multiple",
        title=title,
        content=content,
        ext=ext or {},
        created=TIME_PLACEHOLDER,
        expires=TIME_PLACEHOLDER,
    )

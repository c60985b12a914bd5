"""JSON request bodies parsed in bounded slices, so a large body never holds the event loop.

The event loop that runs the API also runs every device connection, and the
standard library's decoder cannot be interrupted: 600 KB of `[],[],…` takes
~70 ms on this project's machine. So a body of up to `WHOLE` characters is one
`json.loads`; a larger one must be a JSON object (every body of this API is)
and is decoded one piece at a time: each member's value, and each element of a
member whose value is an array (`targets`), with a checkpoint every `SLICE`
characters. A piece is at most `PIECE` characters (a string: `STRING_PIECE`),
so no single call into the decoder lasts more than a few milliseconds, and
there are at most `MAX_ITEMS` members and elements per array, so the Python
loop around the decoder stays short too.

Both paths use the same decoder and give the same value for every body they
accept. Not JSON (per RFC 8259): NaN, Infinity, trailing data.

Decoded JSON takes up to ~20x its text in Python objects (`[]` is 2 bytes of
text, a 56-byte list), so the sliced path also keeps only what the caller
wants: members whose names it lists (others are decoded, checked and dropped
piece by piece), and each array element as the caller's `element` hook turns
it (json_body validates a target there and fails at the first bad one), so
memory stays near the size of the text, not 20 times it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

import trio

WHOLE = 64 * 1024
SLICE = 64 * 1024
PIECE = 64 * 1024
STRING_PIECE = 1024 * 1024
MAX_ITEMS = 1000  # members of the object, elements of one of its arrays (targets: 1000)
_FIRST_WINDOW = 4096

_WS = re.compile(r"[ \t\n\r]*")


class NotJson(ValueError):
    """The body is not JSON, or one of its values is beyond the piece limits."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position})")
        self.position = position


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


# (member name, index, decoded element) -> what to keep of it; raises to refuse it.
ElementHook = Callable[[str, int, Any], Any]


async def parse_json(
    text: str, *, members: Collection[str] | None = None, element: ElementHook | None = None
) -> Any:
    """The JSON value of `text`; large bodies are decoded piece by piece with checkpoints,
    keeping only `members` (all when None) and each array element as `element` returns it."""
    if len(text) <= WHOLE:
        try:
            return _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise NotJson(exc.msg, exc.pos) from None
        except (ValueError, RecursionError) as exc:
            raise NotJson(str(exc) or "nested too deeply", 0) from None
    return await _Pieces(text, members, element).read_object()


class _Pieces:
    def __init__(
        self, text: str, members: Collection[str] | None, element: ElementHook | None
    ) -> None:
        self.text = text
        self.pos = 0
        self._since_checkpoint = 0
        self._members = members
        self._element = element

    def _skip(self) -> None:
        match = _WS.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def _expect(self, char: str, what: str) -> None:
        self._skip()
        if not self.text.startswith(char, self.pos):
            raise NotJson(f"expecting {what}", self.pos)
        self.pos += 1

    async def _checkpoint(self, start: int) -> None:
        self._since_checkpoint += self.pos - start
        if self._since_checkpoint >= SLICE:
            self._since_checkpoint = 0
            await trio.lowlevel.checkpoint()

    async def read_object(self) -> dict[str, Any]:
        self._expect("{", "a JSON object")
        result: dict[str, Any] = {}
        members = 0
        self._skip()
        if self.text.startswith("}", self.pos):
            self.pos += 1
        else:
            while True:
                members += 1
                if members > MAX_ITEMS:
                    raise NotJson(f"an object with more than {MAX_ITEMS} members", self.pos)
                self._skip()
                if not self.text.startswith('"', self.pos):
                    raise NotJson("expecting a property name in double quotes", self.pos)
                key = self._piece()
                self._expect(":", "':'")
                self._skip()
                start = self.pos
                keep = self._members is None or key in self._members
                if self.text.startswith("[", self.pos):
                    value = await self._read_array(key if keep else None)
                else:
                    value = self._piece()
                if keep:
                    result[key] = value
                await self._checkpoint(start)
                self._skip()
                if self.text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                self._expect("}", "',' or '}'")
                break
        self._skip()
        if self.pos != len(self.text):
            raise NotJson("extra data after the JSON object", self.pos)
        return result

    async def _read_array(self, key: str | None) -> list[Any]:
        """The elements of a member's array (none kept when `key` is None: not wanted)."""
        self.pos += 1  # [
        items: list[Any] = []
        count = 0
        self._skip()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            if count >= MAX_ITEMS:
                raise NotJson(f"an array with more than {MAX_ITEMS} elements", self.pos)
            self._skip()
            start = self.pos
            value = self._piece()
            if key is not None:
                items.append(value if self._element is None else self._element(key, count, value))
            count += 1
            await self._checkpoint(start)
            self._skip()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            self._expect("]", "',' or ']'")
            return items

    def _piece(self) -> Any:
        """One JSON value at `pos`, decoded by the standard decoder on a bounded window.

        The window starts small and grows while the value may go on past it,
        up to the piece limit: short values cost a short copy.
        """
        text, pos = self.text, self.pos
        limit = STRING_PIECE if text.startswith('"', pos) else PIECE
        window = _FIRST_WINDOW
        while True:
            end = min(pos + window, len(text))
            try:
                value, used = _DECODER.raw_decode(text[pos:end])
            except json.JSONDecodeError as exc:
                if end == len(text):
                    raise NotJson(exc.msg, pos + exc.pos) from None
                complete = False  # maybe only cut by the window
            except (ValueError, RecursionError) as exc:
                raise NotJson(str(exc) or "nested too deeply", pos) from None
            else:
                # A number cut by the window still decodes: it is complete only
                # if something follows it inside the window.
                complete = pos + used < end or end == len(text)
            if complete:
                self.pos = pos + used
                return value
            if window >= limit:
                raise NotJson(f"not JSON, or a value longer than {limit} characters", pos)
            window = min(window * 4, limit)

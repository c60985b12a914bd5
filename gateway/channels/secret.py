"""A secret value that never shows itself: not in reprs, logs, exceptions or f-strings."""

from __future__ import annotations

import hmac
from typing import Final, NoReturn, final

MASK: Final = "********"


@final
class Secret:
    """Holds a credential; only `reveal()` gives the value back.

    `str()`, `repr()` and formatting all print a mask, so a secret that slips
    into a log line, an exception message or a metric label stays hidden.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        """The mask, plus the last 4 characters when the secret is long enough
        that they give nothing useful away (so an operator can tell two apart)."""
        if len(self._value) >= 16 and self._value[-4:].isalnum():
            return MASK + self._value[-4:]
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret is not picklable; store it encrypted (gateway.channels.keyring)")

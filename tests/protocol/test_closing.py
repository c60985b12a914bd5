"""The one vocabulary of how a connection ends: codes, reasons, close codes, and the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol import ByeReason, CloseCode, ErrorCode, close_code_for, close_code_for_bye
from protocol.closing import REPLY_CODES, is_fatal

README = Path(__file__).resolve().parents[2] / "README.md"

CLOSE_AFTER = {
    ErrorCode.TEXT_NOT_ALLOWED: 1003,
    ErrorCode.FRAME_TOO_LARGE: 1009,
    ErrorCode.STORE_UNAVAILABLE: 1013,
    ErrorCode.SERVER_BUSY: 1013,
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_error_code_closes_with_its_websocket_code(code: ErrorCode) -> None:
    assert close_code_for(code) == CLOSE_AFTER.get(code, 1008)


def test_reasons_close_normally_except_shutdown() -> None:
    assert {r: close_code_for_bye(r) for r in ByeReason} == {
        ByeReason.REPLACED: CloseCode.NORMAL,
        ByeReason.IDLE_TIMEOUT: CloseCode.NORMAL,
        ByeReason.SLOW_CONSUMER: CloseCode.NORMAL,
        ByeReason.SHUTDOWN: CloseCode.GOING_AWAY,
    }


def test_replies_are_replies_only_once_open() -> None:
    for code in ErrorCode:
        assert is_fatal(code, open=False)
        assert is_fatal(code, open=True) is (code not in REPLY_CODES)


def test_the_values_are_the_contracts_strings_and_numbers() -> None:
    # Stable on the wire: SDKs switch on these.
    assert ErrorCode.AUTH_FAILED == "auth_failed" and ByeReason.REPLACED == "replaced"
    assert [int(c) for c in CloseCode] == [1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1013]


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_readme_lists_every_error_code_reason_and_close_code() -> None:
    section = _section("## The device protocol, for SDK authors")
    listed = set(re.findall(r"`([a-z_]+)`", section))
    assert {str(c) for c in ErrorCode} <= listed
    assert {str(r) for r in ByeReason} <= listed
    numbers = set(re.findall(r"\b(1\d{3})\b", section))
    assert {str(int(c)) for c in CloseCode} - {"1006"} <= numbers

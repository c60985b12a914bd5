"""The status-code catalog, checked row by row against seed 001."""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path

import pytest

from protocol import CATALOG, Status, StatusCode, channels, lookup

# A copy of the product seed (origin: tests/protocol/seeds/README.md).
SEED = Path(__file__).parent / "seeds" / "001_cf679f8f00ea8f1c.txt"

# The seed's table headings, and the channel identifier each one gets.
HEADINGS = {
    "Common status codes": "common",
    "Apple Push": "apns",
    "Huawei Push": "huawei",
    "MiPush": "xiaomi",
    "OPPO Push": "oppo",
    "vivo Push": "vivo",
    "FCM": "fcm",
}
ROW_COUNTS = {"common": 5, "apns": 16, "huawei": 22, "xiaomi": 36, "oppo": 12, "vivo": 18, "fcm": 7}
_ROW_START = re.compile(r"-?\d+ \| ")

Row = tuple[str, int, str, str]


@cache
def seed_rows() -> tuple[Row, ...]:
    """Parse seed 001: `Heading`, `Status code | [Message |] Description |`, then
    rows `code | [name |] description |`. A row whose line does not end in
    ` |` continues on the next lines (joined with one space)."""
    assert SEED.is_file(), f"seed 001 is missing: {SEED}"
    lines = SEED.read_text(encoding="utf-8").splitlines()
    rows: list[Row] = []
    channel: str | None = None
    with_name = False
    pending: str | None = None
    for line in lines:
        if pending is not None:
            pending += " " + line
            if pending.endswith(" |"):
                rows.append(_row(channel, with_name, pending))
                pending = None
            continue
        if line in HEADINGS:
            channel = HEADINGS[line]
            continue
        if line.startswith("Status code |"):
            assert line in ("Status code | Message | Description |", "Status code | Description |")
            with_name = "Message" in line
            continue
        if channel is not None and _ROW_START.match(line):
            if line.endswith(" |"):
                rows.append(_row(channel, with_name, line))
            else:
                pending = line
    assert pending is None, "unterminated row at the end of the seed"
    return tuple(rows)


def _row(channel: str | None, with_name: bool, text: str) -> Row:
    assert channel is not None
    cells = text.removesuffix(" |")
    if with_name:
        code, name, description = cells.split(" | ", 2)
    else:
        (code, description), name = cells.split(" | ", 1), ""
    return channel, int(code), name, description


def test_seed_has_116_rows() -> None:
    rows = seed_rows()
    assert len(rows) == 116
    counts = {ch: sum(1 for r in rows if r[0] == ch) for ch in HEADINGS.values()}
    assert counts == ROW_COUNTS


def test_catalog_has_116_rows() -> None:
    assert len(CATALOG) == 116
    assert all(isinstance(s, StatusCode) for s in CATALOG)


def test_catalog_is_the_seed_row_by_row() -> None:
    catalog = [(s.channel, s.code, s.name, s.description) for s in CATALOG]
    for ours, seed in zip(catalog, seed_rows(), strict=True):
        assert ours == seed


def test_channel_and_code_are_unique() -> None:
    keys = [(s.channel, s.code) for s in CATALOG]
    assert len(set(keys)) == len(keys)


def test_codes_collide_across_channels() -> None:
    # Why lookup takes a channel: the same number means different things.
    assert {s.channel for s in CATALOG if s.code == -1} == {"common", "oppo"}
    assert {s.channel for s in CATALOG if s.code == 10000} == {"oppo", "vivo"}


def test_channels() -> None:
    assert channels() == ("common", "apns", "huawei", "xiaomi", "oppo", "vivo", "fcm")
    assert {s.channel for s in CATALOG} == set(channels())


def test_lookup() -> None:
    assert lookup(-1) == StatusCode("common", -1, "WaitingForVerify", "Waiting for verification.")
    assert lookup(-1, "oppo") == StatusCode(
        "oppo",
        -1,
        "Service Currently Unavailable",
        "The service is unavailable, please try again later.",
    )
    oppo, vivo = lookup(10000, "oppo"), lookup(10000, "vivo")
    assert oppo is not None
    assert oppo.name == "Invalid RegistrationId"
    assert vivo is not None
    assert vivo.description == "Permission authentication failed."
    assert lookup(99999999) is not None
    assert lookup(99999999, "common") == lookup(Status.NONE)


@pytest.mark.parametrize(
    ("code", "channel"),
    [(3, "common"), (2001, "common"), (-1, "apns"), (2, "nope"), (2, "COMMON"), (10000, "fcm")],
)
def test_lookup_of_an_unknown_code_or_channel_is_none(code: int, channel: str) -> None:
    assert lookup(code, channel) is None


def test_every_row_is_found() -> None:
    for s in CATALOG:
        assert lookup(s.code, s.channel) is s


def test_descriptions_are_verbatim() -> None:
    huawei_101 = lookup(101, "huawei")
    assert huawei_101 is not None
    assert huawei_101.description == "Invaid API_KEY."
    assert huawei_101.name == ""
    conn_closed = lookup(2024, "apns")
    assert conn_closed is not None
    assert conn_closed.description == (
        "APNS disconnected. This status may caused by the following reasons: "
        "For more information about how to configure the iOS push certificate, environment "
        "and BundleId in the console, see Configure iOS push channel."
    )
    acked = lookup(Status.ACKED)
    assert acked is not None
    assert "vendor’s push gateway" in acked.description


@pytest.mark.parametrize("channel", ["huawei", "xiaomi", "vivo"])
def test_tables_without_a_message_column_have_empty_names(channel: str) -> None:
    rows = [s for s in CATALOG if s.channel == channel]
    assert rows
    assert all(s.name == "" and s.description for s in rows)


def test_status_enum_is_the_common_table() -> None:
    assert [int(s) for s in Status] == [-1, 0, 1, 2, 99999999]
    for status in Status:
        entry = lookup(status)
        assert entry is not None
        snake = entry.name if entry.name.isupper() else re.sub(r"(?<!^)(?=[A-Z])", "_", entry.name)
        assert snake.upper() == status.name
    assert {s.code for s in CATALOG if s.channel == "common"} == {int(s) for s in Status}


def test_status_code_is_frozen_and_slotted() -> None:
    entry = CATALOG[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.code = 5  # type: ignore[misc]
    assert not hasattr(entry, "__dict__")

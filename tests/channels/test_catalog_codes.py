"""Every code of every vendor table in the seeds comes out of its adapter, from a
stand-in answering the way that vendor does: a code no scenario reaches fails."""

from __future__ import annotations

import pytest
import trustme

from gateway.clock import ManualClock
from protocol import CATALOG, StatusCode, lookup

from .envs import vendor_env
from .scenarios import SCENARIOS

VENDOR_ROWS = [row for row in CATALOG if row.channel != "common"]


@pytest.mark.parametrize("row", VENDOR_ROWS, ids=[f"{r.channel}-{r.code}" for r in VENDOR_ROWS])
async def test_vendor_code_is_produced(row: StatusCode, wall: ManualClock, ca: trustme.CA) -> None:
    scenario = SCENARIOS.get((row.channel, row.code))
    assert scenario is not None, f"no scenario produces {row.channel} {row.code}"
    endpoint = scenario.endpoint() if scenario.endpoint else None
    async with vendor_env(row.channel, wall, ca, endpoint=endpoint) as env:
        scenario.prepare(env)
        result = await env.send()
    assert (result.vendor, result.code) == (row.channel, row.code), result
    assert result.raw  # what the vendor said is kept


def test_every_scenario_is_a_catalog_code() -> None:
    stale = [key for key in SCENARIOS if lookup(key[1], key[0]) is None]
    assert stale == []


def test_every_vendor_table_is_covered() -> None:
    vendors = {row.channel for row in VENDOR_ROWS}
    assert vendors == {"apns", "fcm", "huawei", "xiaomi", "oppo", "vivo"}
    assert len(VENDOR_ROWS) == 111  # the count of vendor codes in the seeds

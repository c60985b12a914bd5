"""Fixtures for the simulator tests: a real gateway on the wall clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from client_sim.driver import PushDriver
from client_sim.fleet import DevicePlan, Fleet
from client_sim.oracle import Oracle
from gateway.clock import SystemClock
from tests.harness import APP, RunningGateway, running_gateway


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    """An in-process gateway on the system clock: device timestamps are wall time."""
    async with running_gateway(tmp_path / "sim.db", clock=SystemClock()) as running:
        yield running


def make_fleet(
    gw: RunningGateway, plans: Sequence[DevicePlan], oracle: Oracle | None = None, **kwargs: Any
) -> Fleet:
    return Fleet(
        plans,
        url=gw.ws_url,
        app=APP.app_id,
        secret=APP.secret,
        observer=oracle,
        seed=1,
        **kwargs,
    )


@asynccontextmanager
async def open_driver(
    gw: RunningGateway, oracle: Oracle, **kwargs: Any
) -> AsyncIterator[PushDriver]:
    async with PushDriver.open(
        gw.addresses.api, APP.api_key, on_accepted=oracle.accept, **kwargs
    ) as driver:
        yield driver

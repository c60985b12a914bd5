"""Helpers for the simulator tests: fleets and drivers against the `live` gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from client_sim.driver import PushDriver
from client_sim.fleet import DevicePlan, Fleet
from client_sim.oracle import Oracle
from tests.harness import APP, RunningGateway


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

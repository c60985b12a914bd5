"""Fail-over between the addresses of several gateway nodes (`DeviceConfig.fallback_urls`):
a refused connect or a connection the gateway side ended moves the device to the next
address, round robin; the device's own `drop()` keeps it where it is."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import trio

from client_sim import Device, DeviceConfig
from client_sim.behaviours import Steady
from client_sim.fleet import DevicePlan, Fleet
from tests.harness import SAFETY_NET

from .conftest import APP, SECRET, FakeGateway


def refused_url(transport: str) -> str:
    """An address nothing listens on (a port just freed): connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"ws://127.0.0.1:{port}/v1/connect" if transport == "ws" else f"tcp://127.0.0.1:{port}"


def device_for(url: str, *fallbacks: str) -> Device:
    config = DeviceConfig(
        url=url,
        fallback_urls=fallbacks,
        app=APP,
        device_id="roamer",
        secret=SECRET,
        backoff_base=0.02,
        backoff_cap=0.05,
    )
    return Device(config)


async def test_a_refused_address_fails_over_to_the_next(
    gateway: FakeGateway, transport: str
) -> None:
    device = device_for(refused_url(transport), gateway.url)
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            await nursery.start(device.run)
            session = await gateway.wait_session(1)
            await device.close()
    assert session.hello.device == "roamer"
    assert device.connect_failures == 1
    assert device.failovers == 1
    assert device.url == gateway.url


async def test_a_connection_ended_by_the_gateway_moves_round_robin(
    gateway_factory: Callable[..., Any], transport: str
) -> None:
    a: FakeGateway = await gateway_factory()
    b: FakeGateway = await gateway_factory()
    device = device_for(a.url, b.url)
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            await nursery.start(device.run)
            await (await a.wait_session(1)).drop()  # a reset from the node's side
            await (await b.wait_session(1)).bye("shutdown")  # a draining node
            await a.wait_session(2)  # round robin: back to the first
            await device.wait_for(lambda: device.welcomes == 3, SAFETY_NET)
            await device.close()
    assert (len(a.sessions), len(b.sessions)) == (2, 1)
    assert device.failovers == 2
    assert device.connect_failures == 0


async def test_its_own_drop_keeps_the_device_on_its_node(
    gateway_factory: Callable[..., Any], transport: str
) -> None:
    a: FakeGateway = await gateway_factory()
    b: FakeGateway = await gateway_factory()
    device = device_for(a.url, b.url)
    with trio.fail_after(SAFETY_NET):
        async with trio.open_nursery() as nursery:
            await nursery.start(device.run)
            await device.drop()  # a flaky network: the node is still there
            await a.wait_session(2)
            await device.wait_for(lambda: device.welcomes == 2, SAFETY_NET)
            await device.close()
    assert b.sessions == []
    assert device.failovers == 0


def test_a_fleet_gives_each_device_its_home_node_first_then_the_others_in_order() -> None:
    urls = ["ws://n0/v1/connect", "ws://n1/v1/connect", "ws://n2/v1/connect"]
    plans = [DevicePlan(device_id=f"d{i}", behaviour=Steady()) for i in range(30)]
    fleet = Fleet(plans, url=",".join(urls), app=APP, secret=SECRET)
    homes = set()
    for plan in plans:
        config = fleet.device_config(plan)
        home = urls.index(config.url)
        homes.add(home)
        assert config.urls == tuple(urls[home:] + urls[:home])
    assert homes == {0, 1, 2}

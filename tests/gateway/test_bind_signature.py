"""Bind signatures over real sockets: the simulator's Device and the gateway agree on
CONTRACT §3's text, and a colon in an ID no longer moves between device and user."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import trio

from client_sim import Device, DeviceConfig, GatewayError
from tests.harness import APP, RunningGateway, message_details, push_simple


def contract_sig(device: str, user: str) -> str:
    text = "bind\n" + APP.app_id + "\n" + device + "\n" + user
    return hmac.new(APP.secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def device(gw: RunningGateway, device_id: str) -> Device:
    return Device(
        DeviceConfig(url=gw.ws_url, app=APP.app_id, device_id=device_id, secret=APP.secret)
    )


async def user_of(gw: RunningGateway, device_id: str) -> object:
    async with gw.http() as client:
        answer = await client.get(f"/v1/devices/{device_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()["user_id"]


async def test_the_device_and_the_gateway_sign_the_contract_text(
    gw: RunningGateway, nursery: trio.Nursery
) -> None:
    with trio.fail_after(10):
        phone = device(gw, "phone-1")
        await nursery.start(phone.run)
        assert await phone.bind("alice") == "alice"  # the Device computes its own sig
        tablet = device(gw, "tablet-1")
        await nursery.start(tablet.run)
        assert await tablet.bind("bob", sig=contract_sig("tablet-1", "bob")) == "bob"
        assert await user_of(gw, "phone-1") == "alice"
        assert await user_of(gw, "tablet-1") == "bob"
        await phone.close()
        await tablet.close()


async def test_a_sig_for_mal_and_x_alice_does_not_bind_mal_x_to_alice(
    gw: RunningGateway, nursery: trio.Nursery
) -> None:
    # The app's backend issued a signature for its user "x:alice" on device "mal".
    issued = contract_sig("mal", "x:alice")
    async with gw.http() as client:
        for_alice = await push_simple(client, "alice", delivery_type="user", title="private")
    assert for_alice["status"] == 1
    with trio.fail_after(10):
        attacker = device(gw, "mal:x")
        await nursery.start(attacker.run)
        with pytest.raises(GatewayError) as refused:
            await attacker.bind("alice", sig=issued)
        assert refused.value.code == "bad_signature"
        assert await user_of(gw, "mal:x") is None
        # A round trip after the refusal: alice's message would have come before it.
        await attacker.unbind()
        assert attacker.received == {}
        async with gw.http() as client:
            details = await message_details(client, for_alice["message_id"])
        assert details["status_name"] == "NoBindInfo"
        assert details["deliveries"] == []

        # The signature still does what it was issued for.
        owner = device(gw, "mal")
        await nursery.start(owner.run)
        assert await owner.bind("x:alice", sig=issued) == "x:alice"
        assert await user_of(gw, "mal") == "x:alice"
        await attacker.close()
        await owner.close()

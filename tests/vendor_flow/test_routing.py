"""Routing to vendors through a real `pushgate serve`: fallback after the ack
timeout (connected, never acks), none for an acked delivery, offline devices at
once with policy 0, registrations from hello, the vendor frame and the API, a
dead token removed, bad input answered 400 naming the field; then the
`pushgate channels` commands on the same gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from client_sim.connection import open_device_connection
from client_sim.transport import DeviceConnection
from gateway.settings import AppDeclaration
from protocol import Ack, Error, Hello, Push, Vendor, VendorOk, Welcome, device_token
from tests.channels.standins.fcm import fcm_error
from tests.harness import APP, OTHER_APP, SAFETY_NET, frames_before_pong, receive, wait_until

from .cli_checks import check_channels_commands
from .support import (
    channel_key,
    client_for,
    configure,
    delivery_when,
    push,
    register,
    standins,
    start_gateway,
)

FCM_TOKEN = "fcm-" + "t" * 150


async def _connect(
    ws_url: str, device: str, app: AppDeclaration, **vendor: str
) -> DeviceConnection:
    conn = await open_device_connection(ws_url)
    hello = Hello(
        v=1,
        app=app.app_id,
        device=device,
        platform="android",
        token=device_token(app.secret, app.app_id, device),
        **vendor,
    )
    await conn.send_frame(hello)
    assert isinstance(await receive(conn), Welcome)
    return conn


async def _bad(client: httpx.AsyncClient, method: str, url: str, body: Any, field: str) -> None:
    answer = await client.request(method, url, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field, answer.text


async def test_fallback_routing_and_bad_input(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_key(monkeypatch)
    async with standins(ca, ("fcm", "huawei", "apns")) as stand:
        fcm = stand.by_vendor["fcm"]
        process = start_gateway(tmp_path, ca, (APP, OTHER_APP))
        try:
            async with client_for(process, APP) as client, client_for(process, OTHER_APP) as other:
                await _bad_input(client, stand.fields("apns"))
                await configure(client, "fcm", stand.fields("fcm"), fallback_after=1)
                await configure(other, "huawei", stand.fields("huawei"), fallback_after=0)
                listed = (await client.get("/v1/channels")).json()["items"]
                assert [c["vendor"] for c in listed] == ["fcm"]
                assert "PRIVATE KEY" not in str(listed)

                # Connected, never acks: the vendor gets it after fallback_after_seconds.
                silent = await _connect(
                    process.ws_url, "silent", APP, vendor="fcm", vendor_token=FCM_TOKEN
                )
                late = await push(client, "silent", "fcm")
                assert isinstance(await receive(silent), Push)
                found = await delivery_when(
                    client, late, "the vendor fallback", lambda d: d["status"] == 2
                )
                (delivery,) = found["deliveries"]
                assert (found["status"], delivery["channel"], delivery["code"]) == (2, "fcm", 2)
                sent = [m for m in fcm.messages if m["data"]["id"] == late]
                assert len(sent) == 1 and sent[0]["token"] == FCM_TOKEN
                device = (await client.get("/v1/devices/silent")).json()
                assert (device["vendor"], device["vendor_token"]) == ("fcm", FCM_TOKEN[-6:])

                # Acked in time: never sent to the vendor. A later delivery (due later,
                # claims go in due order) going out proves the acked one was passed over.
                prompt = await _connect(
                    process.ws_url, "prompt", APP, vendor="fcm", vendor_token=FCM_TOKEN + "p"
                )
                acked = await push(client, "prompt", "fcm")
                frame = await receive(prompt)
                assert isinstance(frame, Push) and frame.id == acked
                await prompt.send_frame(Ack(ids=(acked,)))
                await frames_before_pong(prompt)
                later = await push(client, "silent", "fcm")
                await delivery_when(client, later, "a later fallback", lambda d: d["status"] == 2)
                assert [m for m in fcm.messages if m["data"]["id"] == acked] == []
                found = await delivery_when(client, acked, "the ack", lambda d: d["status"] == 2)
                assert found["deliveries"][0]["channel"] == "self"

                # The vendor frame: a bad one is a reply, a good one vendor_ok.
                await prompt.send_frame(Vendor(vendor="nokia", token="x"))
                (error,) = await frames_before_pong(prompt)
                assert isinstance(error, Error) and error.code == "bad_vendor"
                await prompt.send_frame(Vendor(vendor="huawei", token="hw-prompt"))
                assert await frames_before_pong(prompt) == [VendorOk()]
                device = (await client.get("/v1/devices/prompt")).json()
                assert (device["vendor"], device["vendor_token"]) == ("huawei", "prompt")
                await prompt.aclose()
                await silent.aclose()

                # Offline, policy 0: the vendor at once; registered by a vendor frame.
                away = await _connect(process.ws_url, "away", OTHER_APP)
                await away.send_frame(Vendor(vendor="huawei", token="hw-away-token"))
                frames = await frames_before_pong(away)
                assert frames == [VendorOk()]
                await away.aclose()
                await wait_until(
                    lambda: _offline(other, "away"), "the device offline", timeout=SAFETY_NET
                )
                at_once = await push(other, "away", "huawei")
                found = await delivery_when(other, at_once, "huawei", lambda d: d["status"] == 2)
                assert found["deliveries"][0]["channel"] == "huawei"

                # A dead token: the registration is removed.
                fcm.answers["fcm-dead"] = fcm_error(404, "UNREGISTERED", "not found")
                await register(client, "gone", "fcm", "fcm-dead")
                await configure(client, "fcm", stand.fields("fcm"), fallback_after=0)
                dead = await push(client, "gone", "fcm")
                await delivery_when(client, dead, "UNREGISTERED", lambda d: d["code"] == 90000003)
                # Never connected, and now no registration either: no such device.
                assert (await client.get("/v1/devices/gone")).status_code == 404
            check_channels_commands(process, tmp_path)
        finally:
            process.kill9()
    assert stand.problems() == []


async def _offline(client: httpx.AsyncClient, device: str) -> bool:
    return (await client.get(f"/v1/devices/{device}")).json()["online"] is False


async def _bad_input(client: httpx.AsyncClient, apns: dict[str, Any]) -> None:
    await _bad(client, "PUT", "/v1/channels/nokia", {}, "vendor")
    await _bad(
        client,
        "PUT",
        "/v1/channels/apns",
        {k: v for k, v in apns.items() if k != "key_id"},
        "key_id",
    )
    await _bad(
        client,
        "PUT",
        "/v1/channels/apns",
        {**apns, "private_key": "-----BEGIN PRIVATE KEY-----\nnope"},
        "private_key",
    )
    await _bad(
        client, "PUT", "/v1/channels/fcm", {"service_account": "{not json"}, "service_account"
    )
    await _bad(
        client, "PUT", "/v1/devices/d1/vendor", {"vendor": "vivo", "token": "1" * 65}, "token"
    )
    await _bad(client, "PUT", "/v1/devices/d1/vendor", {"vendor": "nokia", "token": "t"}, "vendor")
    await _bad(
        client,
        "PUT",
        "/v1/channel-policy",
        {"fallback_after_seconds": -1},
        "fallback_after_seconds",
    )
    answer = await client.delete("/v1/channels/xiaomi")
    assert answer.status_code == 404, answer.text

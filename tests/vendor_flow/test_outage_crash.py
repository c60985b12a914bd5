"""A vendor outage and a crash, against real `pushgate serve` processes: the
circuit opens and the self-built channel and the API carry on, sends resume
when the vendor is back; a process killed (-9) between claiming a fallback and
recording the vendor's answer sends it after the restart."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import trio
import trustme

from protocol import Ack, Push
from tests.channels.standins.fcm import fcm_error
from tests.harness import APP, OTHER_APP, SAFETY_NET, connect_device, receive, wait_until

from .support import (
    channel_key,
    client_for,
    configure,
    delivery_when,
    details,
    push,
    register,
    standins,
    start_gateway,
)

DEVICES = [f"out-{i}" for i in range(4)]


async def _fast_failures(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    found = re.search(r'pushgate_vendor_fast_failures_total\{vendor="fcm"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


async def test_an_outage_opens_the_circuit_and_sends_resume(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_key(monkeypatch)
    async with standins(ca, ("fcm",)) as stand:
        fcm = stand.by_vendor["fcm"]
        for device in DEVICES:  # the outage: every send answered 503 UNAVAILABLE
            fcm.answers[f"fcm-{device}"] = fcm_error(503, "UNAVAILABLE", "down")
        flags = ("--vendor-breaker-failures", "2", "--vendor-breaker-seconds", "1")
        process = start_gateway(tmp_path, ca, (APP, OTHER_APP), *flags, "--vendor-retries", "1")
        try:
            async with client_for(process, APP) as client, client_for(process, OTHER_APP) as other:
                await configure(client, "fcm", stand.fields("fcm"))
                ids = []
                for device in DEVICES:
                    await register(client, device, "fcm", f"fcm-{device}")
                    ids.append(await push(client, device, "fcm"))
                await wait_until(lambda: _fast_failures(client), "the circuit to open")
                # Open circuit: the self-built channel and the API are unaffected.
                conn, _ = await connect_device(process.ws_url, "bystander", app=OTHER_APP)
                with trio.fail_after(SAFETY_NET):
                    answer = await other.post(
                        "/v1/push/simple",
                        json={
                            "delivery_type": "android",
                            "target_id": "bystander",
                            "title": "t",
                            "content": "c",
                        },
                    )
                frame = await receive(conn)
                assert isinstance(frame, Push) and frame.id == answer.json()["message_id"]
                await conn.send_frame(Ack(ids=(frame.id,)))
                await delivery_when(other, frame.id, "the ack", lambda d: d["status"] == 2)
                await conn.aclose()

                # FCM's UNAVAILABLE is recorded on the deliveries it answered. Which ones
                # reached it before the circuit opened depends on the machine's timing:
                # one refused by the open circuit itself was never sent (NONE).
                async def vendor_code_recorded() -> bool:
                    codes = [(await details(client, i))["deliveries"][0]["code"] for i in ids]
                    assert set(codes) <= {None, 90000011, 99999999}, codes
                    return 90000011 in codes

                await wait_until(vendor_code_recorded, "FCM's UNAVAILABLE on a delivery")
                # The vendor is back: every delivery goes out.
                fcm.answers.clear()
                for message_id in ids:
                    done = await delivery_when(
                        client, message_id, "sends to resume", lambda d: d["status"] == 2
                    )
                    assert done["deliveries"][0]["channel"] == "fcm"
        finally:
            process.kill9()
    assert stand.problems() == []


async def test_a_crash_between_claim_and_answer_is_sent_after_restart(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_key(monkeypatch)
    async with standins(ca, ("fcm",)) as stand:
        fcm = stand.by_vendor["fcm"]
        lease = ("--fallback-lease", "1")
        first = start_gateway(tmp_path, ca, (APP,), *lease)
        try:
            async with client_for(first, APP) as client:
                await configure(client, "fcm", stand.fields("fcm"))
                await register(client, "warm", "fcm", "fcm-warm")
                warm = await push(client, "warm", "fcm")  # the OAuth token is fetched now
                await delivery_when(client, warm, "a first send", lambda d: d["status"] == 2)
                fcm.hold = trio.Event()  # the vendor takes the request and does not answer
                await register(client, "crash-1", "fcm", "fcm-crash-1")
                message_id = await push(client, "crash-1", "fcm")
                await wait_until(lambda: fcm.in_flight > 0, "the claimed send to arrive")
        finally:
            first.kill9()  # claimed and sent, the answer never recorded
        fcm.hold.set()
        fcm.hold = None
        second = start_gateway(tmp_path, ca, (APP,), *lease)
        try:
            async with client_for(second, APP) as client:
                found = await delivery_when(
                    client, message_id, "the send after restart", lambda d: d["status"] == 2
                )
                assert (found["status"], found["deliveries"][0]["channel"]) == (2, "fcm")
        finally:
            second.kill9()
        # At-least-once: the vendor got the request from each process (the first one's
        # body was cut by the kill), and the one it answered carried the message id.
        assert fcm.count(f"/v1/projects/{fcm.project_id}/messages:send") == 1 + 2
        assert message_id in [m["data"]["id"] for m in fcm.messages]
    assert stand.problems() == []

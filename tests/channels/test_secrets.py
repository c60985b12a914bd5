"""Secrets never reach logs, reprs, exceptions or statistics: every vendor is
driven through success, a refused token and a failed auth with logging at
DEBUG, and every sentinel is looked for in everything that was written."""

from __future__ import annotations

import logging

import pytest
import trustme

from gateway.channels import ChannelDirectory, GuardSettings, RetryPolicy, VendorDelivery
from gateway.clock import ManualClock

from . import keys
from .envs import APP, SECRETS, TOKENS, vendor_env
from .standins.apns import ApnsReply
from .standins.http1 import Reply


def _pem_body(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if "-----" not in line][1:3]


@pytest.mark.parametrize("vendor", sorted(TOKENS))
async def test_no_secret_in_logs_reprs_or_statistics(
    vendor: str, wall: ManualClock, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with vendor_env(vendor, wall, ca) as env:
        settings = GuardSettings(retry=RetryPolicy(base_delay=0.01))
        async with ChannelDirectory(wall, env.options, settings) as directory:
            await directory.configure(APP, env.credentials)
            delivery = VendorDelivery(env.message(), env.token)
            await directory.send(APP, vendor, [delivery])  # success: a token is issued
            env.standin.answers[env.token] = (
                ApnsReply(500, "InternalServerError")
                if vendor == "apns"
                else Reply({"error": "no", "code": 1, "result": 1}, 500)
            )
            await directory.send(APP, vendor, [delivery])
            if hasattr(env.standin, "revoked"):  # vendor tokens: one refused, then a new one
                env.standin.revoked.update(getattr(env.standin, "issued", []))
                await directory.send(APP, vendor, [delivery])
            written = [
                caplog.text,
                *(repr(r.args) for r in caplog.records),
                repr(env.credentials),
                str(env.credentials),
                repr(env.channel),
                repr(directory.statistics),
                repr(delivery),
            ]
        issued = list(getattr(env.standin, "issued", []))
        if vendor == "apns":
            issued = env.standin.provider_tokens()
    sentinels = [*SECRETS.values(), env.token, *issued]
    sentinels += _pem_body(keys.p8_pem()) + _pem_body(keys.rsa_pem())
    assert issued or vendor == "xiaomi", "the run should have issued access tokens to look for"
    text = "\n".join(written)
    leaked = [s for s in sentinels if s in text]
    assert leaked == []
    assert "event=vendor_send" in caplog.text  # the logs exist, they just hold no secret

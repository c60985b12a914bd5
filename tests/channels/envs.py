"""One vendor's channel wired to its stand-in, for tests: `async with vendor_env(...)`."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio
import trustme

from gateway.channels import (
    Channel,
    Credentials,
    HttpOptions,
    SendResult,
    VendorDelivery,
    VendorMessage,
    open_channel,
    parse_credentials,
)
from gateway.clock import ManualClock

from . import keys
from .standins.apns import ApnsStandIn
from .standins.fcm import FcmStandIn
from .standins.http1 import StandIn, serving
from .standins.huawei import HuaweiStandIn
from .standins.oppo import AUTH_PATH as OPPO_AUTH_PATH
from .standins.oppo import OppoStandIn
from .standins.vivo import AUTH_PATH as VIVO_AUTH_PATH
from .standins.vivo import VivoStandIn
from .standins.xiaomi import XiaomiStandIn

APP = "app-1"
TOKENS = {
    "apns": "a1b2" * 16,
    "fcm": "fcm-token-" + "x" * 140,
    "huawei": "IQAAAACy0kYkAACIuhlLfY" + "h" * 100,
    "xiaomi": "mi-regid-" + "m" * 35,
    "oppo": "OPPO_CN_" + "o" * 32,
    "vivo": "16104523101251234567890",
}
AUTH_PATHS = {"oppo": OPPO_AUTH_PATH, "vivo": VIVO_AUTH_PATH}
SECRETS = {  # sentinels: a test greps logs and reprs for them
    "huawei": "huawei-secret-SENTINEL-7f3a",
    "xiaomi": "xiaomi-secret-SENTINEL-8b4c",
    "oppo": "oppo-master-SENTINEL-9c5d",
    "vivo": "vivo-secret-SENTINEL-0d6e",
}


def message(clock: ManualClock, **overrides: Any) -> VendorMessage:
    fields: dict[str, Any] = {
        "message_id": "01m84wdkegvrjfkmcg62vm8tbv",
        "msg_key": "order-42",
        "title": "Hello",
        "content": "Your order shipped",
        "expires_ms": clock.now_ms() + 86_400_000,
        "ext": {"order": "42"},
    }
    fields.update(overrides)
    return VendorMessage(**fields)


@dataclass
class VendorEnv:
    vendor: str
    standin: Any  # the vendor's stand-in
    credentials: Credentials
    channel: Channel
    clock: ManualClock
    options: HttpOptions
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return TOKENS[self.vendor]

    def message(self, **overrides: Any) -> VendorMessage:
        return message(self.clock, **overrides)

    async def send(self, token: str | None = None, **overrides: Any) -> SendResult:
        delivery = VendorDelivery(self.message(**overrides), token or self.token)
        with trio.fail_after(30):
            (result,) = await self.channel.send([delivery])
        return result


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def fields_for(vendor: str, base_url: str, standin: Any) -> dict[str, Any]:
    """The credentials an operator would PUT for `vendor`, pointed at the stand-in."""
    if vendor == "apns":
        return {
            "team_id": keys.TEAM_ID,
            "key_id": keys.KEY_ID,
            "private_key": keys.p8_pem(),
            "topic": keys.TOPIC,
            "environment": "development",
            "endpoint": base_url,
        }
    if vendor == "fcm":
        return {"service_account": keys.service_account(standin.token_uri), "endpoint": base_url}
    if vendor == "huawei":
        return {
            "app_id": "10086",
            "app_secret": SECRETS["huawei"],
            "endpoint": base_url,
            "auth_endpoint": standin.auth_url,
        }
    if vendor == "xiaomi":
        return {
            "app_secret": SECRETS["xiaomi"],
            "package_name": "com.example.app",
            "endpoint": base_url,
        }
    if vendor == "oppo":
        return {"app_key": "oppo-app-key", "master_secret": SECRETS["oppo"], "endpoint": base_url}
    return {
        "app_id": "10001",
        "app_key": "vivo-app-key",
        "app_secret": SECRETS["vivo"],
        "endpoint": base_url,
    }


def make_standin(vendor: str, clock: ManualClock, ca: trustme.CA) -> Any:
    if vendor == "apns":
        return ApnsStandIn(
            ca,
            keys.ec_key().public_key(),
            team_id=keys.TEAM_ID,
            key_id=keys.KEY_ID,
            topic=keys.TOPIC,
            clock=clock,
        )
    if vendor == "fcm":
        return FcmStandIn(
            keys.rsa_key().public_key(),
            client_email=keys.CLIENT_EMAIL,
            project_id=keys.PROJECT_ID,
            clock=clock,
        )
    if vendor == "huawei":
        return HuaweiStandIn(app_id="10086", app_secret=SECRETS["huawei"])
    if vendor == "xiaomi":
        return XiaomiStandIn(app_secret=SECRETS["xiaomi"], package_name="com.example.app")
    if vendor == "oppo":
        return OppoStandIn(app_key="oppo-app-key", master_secret=SECRETS["oppo"], clock=clock)
    return VivoStandIn(
        app_id="10001", app_key="vivo-app-key", app_secret=SECRETS["vivo"], clock=clock
    )


@asynccontextmanager
async def running_standin(standin: Any) -> AsyncIterator[str]:
    """The stand-in served on a free local port; yields its base URL."""
    if isinstance(standin, StandIn):
        async with serving(standin) as url:
            yield url
        return
    async with trio.open_nursery() as nursery:
        await nursery.start(standin.serve)
        yield standin.base_url
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def vendor_env(
    vendor: str,
    clock: ManualClock,
    ca: trustme.CA,
    *,
    endpoint: str | None = None,
    options: HttpOptions | None = None,
) -> AsyncIterator[VendorEnv]:
    """`vendor`'s stand-in and a channel to it (or to `endpoint`, auth still at the
    stand-in); fails the test if the stand-in saw a malformed request."""
    standin = make_standin(vendor, clock, ca)
    options = options or HttpOptions(verify=client_tls(ca), connect_timeout=5, request_timeout=10)
    with trio.fail_after(120):  # the whole test's I/O, however it calls the channel
        async with running_standin(standin) as url:
            fields = fields_for(vendor, url, standin)
            if endpoint is not None:
                fields["endpoint"] = endpoint
                if vendor in ("oppo", "vivo"):  # their auth call stays with the stand-in
                    fields["auth_endpoint"] = url + AUTH_PATHS[vendor]
            credentials = parse_credentials(vendor, fields)
            channel = open_channel(APP, credentials, clock, options)
            try:
                yield VendorEnv(vendor, standin, credentials, channel, clock, options)
            finally:
                await channel.aclose()
    assert standin.problems == [], standin.problems

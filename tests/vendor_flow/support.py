"""End-to-end vendor flows: a real `pushgate serve` process, and the channel tests'
stand-ins (tests/channels/standins) served in the test's own Trio loop.

The gateway reaches the stand-ins over real sockets (APNs over HTTP/2 + TLS
with a trustme CA the gateway is told to trust with `--vendor-ca-file`), with
credentials an operator would PUT, pointed at them by `endpoint`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import trustme

from gateway.channels import generate_key
from gateway.clock import SystemClock
from gateway.settings import AppDeclaration
from tests.channels.envs import fields_for, make_standin, running_standin
from tests.harness import SAFETY_NET, ServerProcess, api_client, start_server_process, wait_until

VENDORS = ("apns", "fcm", "huawei", "xiaomi", "oppo", "vivo")
# The stand-ins check JWT and sign times against the wall clock, as the gateway does.
WALL: Any = cast(Any, SystemClock())
PLATFORM = {"apns": "ios"}


def token_for(vendor: str, case: str) -> str:
    """A token of `vendor`'s shape, unique to `case` (APNs: hexadecimal)."""
    if vendor == "apns":
        return case.encode().hex().ljust(64, "0")[:200]
    return f"{vendor}-{case}"[:64]


@dataclass
class Standins:
    """One running stand-in per vendor, and each one's base URL."""

    by_vendor: dict[str, Any]
    urls: dict[str, str]

    def fields(self, vendor: str) -> dict[str, Any]:
        return fields_for(vendor, self.urls[vendor], self.by_vendor[vendor])

    def problems(self) -> list[str]:
        return [f"{v}: {p}" for v, s in self.by_vendor.items() for p in s.problems]


@asynccontextmanager
async def standins(ca: trustme.CA, vendors: tuple[str, ...] = VENDORS) -> AsyncIterator[Standins]:
    async with AsyncExitStack() as stack:
        by_vendor = {v: make_standin(v, WALL, ca) for v in vendors}
        urls = {
            v: await stack.enter_async_context(running_standin(s)) for v, s in by_vendor.items()
        }
        yield Standins(by_vendor, urls)


def channel_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh encryption key in the environment the gateway process inherits."""
    key = generate_key()
    monkeypatch.setenv("PUSHGATE_CHANNEL_KEY", key)
    return key


def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "vendor-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def start_gateway(
    tmp_path: Path, ca: trustme.CA, apps: tuple[AppDeclaration, ...], *flags: str
) -> ServerProcess:
    return start_server_process(
        tmp_path / "gw.db",
        "--vendor-ca-file",
        ca_file(ca, tmp_path),
        "--fallback-interval",
        "0.1",
        *flags,
        apps=apps,
    )


async def configure(
    client: httpx.AsyncClient, vendor: str, fields: dict[str, Any], fallback_after: int = 0
) -> None:
    answer = await client.put(f"/v1/channels/{vendor}", json=fields)
    assert answer.status_code == 200, answer.text
    answer = await client.put("/v1/channel-policy", json={"fallback_after_seconds": fallback_after})
    assert answer.status_code == 200, answer.text


async def register(client: httpx.AsyncClient, device: str, vendor: str, token: str) -> None:
    answer = await client.put(
        f"/v1/devices/{device}/vendor", json={"vendor": vendor, "token": token}
    )
    assert answer.status_code == 200, answer.text


async def push(client: httpx.AsyncClient, device: str, vendor: str, **extra: Any) -> str:
    body = {
        "delivery_type": PLATFORM.get(vendor, "android"),
        "target_id": device,
        "title": "Hello",
        "content": "Your order shipped",
        **extra,
    }
    answer = await client.post("/v1/push/simple", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["message_id"])


async def details(client: httpx.AsyncClient, message_id: str) -> dict[str, Any]:
    answer = await client.get(f"/v1/messages/{message_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def delivery_when(
    client: httpx.AsyncClient, message_id: str, what: str, condition: Any
) -> dict[str, Any]:
    """The message's details once its (single) delivery satisfies `condition` (read
    again once it does: on PostgreSQL the message and its deliveries are two reads,
    so a commit may land between them)."""

    async def check() -> dict[str, Any] | None:
        found = await details(client, message_id)
        (delivery,) = found["deliveries"]
        return await details(client, message_id) if condition(delivery) else None

    result: dict[str, Any] = await wait_until(check, what, timeout=SAFETY_NET, poll=0.1)
    return result


def client_for(process: ServerProcess, app: AppDeclaration) -> httpx.AsyncClient:
    return api_client(process.api, app)

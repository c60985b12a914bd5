"""Every code of every vendor table in the seeds, end to end: a push to an offline
device with a vendor registration goes to the vendor at once (policy 0), the
vendor's stand-in answers that code, and the delivery and the message show it
through the API, named from the catalog. Table-driven over the catalog: a code
no scenario reaches fails the test. One gateway process serves every case."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import trio
import trustme

from gateway.settings import AppDeclaration
from protocol import CATALOG, lookup
from tests.channels.envs import SECRETS, fields_for, make_standin, running_standin
from tests.channels.keys import p8_pem, rsa_pem
from tests.channels.scenarios import SCENARIOS, Scenario
from tests.harness import SAFETY_NET

from .support import (
    WALL,
    Standins,
    channel_key,
    client_for,
    configure,
    details,
    push,
    register,
    standins,
    start_gateway,
    token_for,
)

MAIN = AppDeclaration("vf", "key-vf", "secret-vf")
VENDOR_ROWS = [row for row in CATALOG if row.channel != "common"]


@dataclass
class Case:
    vendor: str
    code: int
    scenario: Scenario
    app: AppDeclaration = MAIN
    own_standin: bool = False  # the scenario programs the vendor's auth call: a stand-in alone
    device: str = ""
    token: str = ""
    message_id: str = ""
    seen: dict[str, Any] = field(default_factory=dict)


def _cases() -> list[Case]:
    cases = []
    for row in VENDOR_ROWS:
        scenario = SCENARIOS.get((row.channel, row.code))
        assert scenario is not None, f"no scenario produces {row.channel} {row.code}"
        probe = SimpleNamespace(answers={}, illegal_tokens=set(), auth_answer=None)
        scenario.prepare(SimpleNamespace(standin=probe, token="probe"))  # type: ignore[arg-type]
        name = f"{row.channel}{row.code}".replace("-", "m")
        case = Case(row.channel, row.code, scenario)
        if probe.auth_answer is not None or scenario.endpoint is not None:
            case.app = AppDeclaration(f"x-{name}", f"key-{name}", f"secret-{name}")
            case.own_standin = probe.auth_answer is not None
        case.device = f"dev-{name}"
        case.token = token_for(row.channel, name)
        cases.append(case)
    return cases


async def _each(cases: list[Case], step: Callable[[Case], Awaitable[None]]) -> None:
    """`step` for every case, a few at once (the API answers each after its commit)."""
    limiter = trio.CapacityLimiter(8)

    async def one(case: Case) -> None:
        async with limiter:
            await step(case)

    async with trio.open_nursery() as nursery:
        for case in cases:
            nursery.start_soon(one, case)


async def _push_case(case: Case, clients: dict[str, httpx.AsyncClient], main: Standins) -> None:
    if not case.own_standin and case.scenario.endpoint is None:
        env = SimpleNamespace(standin=main.by_vendor[case.vendor], token=case.token)
        case.scenario.prepare(env)  # type: ignore[arg-type]
    client = clients[case.app.app_id]
    await register(client, case.device, case.vendor, case.token)
    case.message_id = await push(client, case.device, case.vendor)


async def _look(case: Case, clients: dict[str, httpx.AsyncClient]) -> None:
    case.seen = await details(clients[case.app.app_id], case.message_id)


def _done(case: Case, found: dict[str, Any]) -> bool:
    (delivery,) = found["deliveries"]
    return bool(delivery["channel"] == case.vendor and delivery["code"] == case.code)


async def test_every_vendor_code_reaches_the_api(
    tmp_path: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = _cases()
    assert len(cases) == 111
    channel_key(monkeypatch)
    apps = tuple({c.app.app_id: c.app for c in cases}.values())
    async with standins(ca) as main, trio.open_nursery() as nursery:
        # Stand-ins of their own for the scenarios that program the auth call.
        own: dict[str, tuple[Any, str]] = {}
        for case in (c for c in cases if c.own_standin):
            standin = make_standin(case.vendor, WALL, ca)
            url = await nursery.start(_serve_standin, standin)
            case.scenario.prepare(SimpleNamespace(standin=standin, token=case.token))  # type: ignore[arg-type]
            own[case.app.app_id] = (standin, url)
        process = start_gateway(
            tmp_path, ca, apps, "--vendor-breaker-failures", "100000", "--vendor-retries", "1"
        )
        try:
            for app in apps:
                async with client_for(process, app) as client:
                    for vendor in {c.vendor for c in cases if c.app == app}:
                        fields = main.fields(vendor)
                        if app.app_id in own:
                            standin, url = own[app.app_id]
                            fields = fields_for(vendor, url, standin)
                        endpoint = next(c.scenario.endpoint for c in cases if c.app == app)
                        if endpoint is not None:
                            fields["endpoint"] = endpoint()
                        await configure(client, vendor, fields)
            clients = {app.app_id: client_for(process, app) for app in apps}
            async with AsyncExitStack() as stack:
                for client in clients.values():
                    await stack.enter_async_context(client)
                await _each(cases, lambda case: _push_case(case, clients, main))
                pending = list(cases)
                with trio.move_on_after(SAFETY_NET * 2):
                    while pending:
                        await _each(pending, lambda case: _look(case, clients))
                        pending = [c for c in pending if not _done(c, c.seen)]
                        await trio.sleep(0.2)
            missing = [(c.vendor, c.code, c.seen.get("deliveries")) for c in pending]
            assert missing == [], f"codes not produced end to end: {missing}"
            async with client_for(process, MAIN) as client:
                metrics = (await client.get("/metrics")).text
        finally:
            process.kill9()
        nursery.cancel_scope.cancel()
    for case in cases:
        _check_details(case)
    assert main.problems() == []
    assert [p for s, _ in own.values() for p in s.problems] == []
    assert 'pushgate_vendor_answers_total{code="2011",vendor="apns"}' in metrics
    assert re.search(r'pushgate_vendor_sends_total\{vendor="vivo"\} [1-9]', metrics)
    _check_no_secret(process.log() + metrics, cases)


async def _serve_standin(standin: Any, *, task_status: Any) -> None:
    async with running_standin(standin) as url:
        task_status.started(url)
        await trio.sleep_forever()


def _check_details(case: Case) -> None:
    found = case.seen
    (delivery,) = found["deliveries"]
    row = lookup(case.code, case.vendor)
    assert row is not None
    assert (delivery["code_name"], delivery["code_description"]) == (row.name, row.description)
    assert delivery["status"] == 0  # refused: the self-built channel may still deliver it
    assert delivery.get("vendor_answer"), case  # what the vendor said is kept
    if case.code == -1:  # OPPO's -1 is also WaitingForVerify's number: delivery only
        assert found["status"] == 0
        return
    assert found["status"] == case.code, (case.vendor, case.code, found["status"])
    assert (found["status_name"], found["status_description"]) == (row.name, row.description)


def _check_no_secret(text: str, cases: list[Case]) -> None:
    secrets = [*SECRETS.values(), *_pem_lines(p8_pem()), *_pem_lines(rsa_pem())]
    secrets += [c.token for c in cases]
    leaked = [s for s in secrets if s in text]
    assert leaked == [], f"secrets or tokens in the log or metrics: {leaked[:3]}"


def _pem_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]

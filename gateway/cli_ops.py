"""Operator commands over the HTTP management API: push, read messages, load-test.

They talk to a running gateway like any backend would (`--api`, `--key`, or
PUSHGATE_API_URL / PUSHGATE_API_KEY), print tables with rich, and exit
non-zero with the API's error code and message when a call fails.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import click
import httpx
import trio
from rich.console import Console
from rich.table import Table

from protocol.status_codes import lookup

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_API = "http://127.0.0.1:8080"
DELIVERY_LABELS = {"user": "User dimension", "android": "Device ID_Android", "ios": "Device ID_iOS"}


def _api_options(fn: F) -> F:
    fn = click.option(
        "--key",
        envvar="PUSHGATE_API_KEY",
        required=True,
        help="The app's API key (or PUSHGATE_API_KEY).",
    )(fn)
    fn = click.option(
        "--api",
        envvar="PUSHGATE_API_URL",
        default=DEFAULT_API,
        show_default=True,
        help="Base URL of the management API (or PUSHGATE_API_URL).",
    )(fn)
    return fn


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")(fn)


def _console() -> Console:
    # Piped output gets wide lines rather than IDs wrapped over several rows.
    return Console(width=None if sys.stdout.isatty() else 240, soft_wrap=False)


def _client(api: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=api.rstrip("/"), headers={"authorization": f"Bearer {key}"}, timeout=30.0
    )


def _call(api: str, key: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One API call; an error answer or an unreachable API becomes a ClickException."""
    try:
        with _client(api, key) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the API at {api}: {exc}") from None
    return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict):
        return body
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        text = f"{error.get('code', 'error')}: {error.get('message', '')}"
        if error.get("field"):
            text += f" (field {error['field']})"
    else:
        text = response.text[:200] or response.reason_phrase
    retry = response.headers.get("retry-after")
    if retry:
        text += f"; retry after {retry} s"
    raise click.ClickException(f"HTTP {response.status_code} {text}")


def _status_text(status: int) -> str:
    code = lookup(status)
    return f"{status} {code.name}" if code else str(status)


def _print_json(body: dict[str, Any]) -> None:
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))


# --- pushgate push ---------------------------------------------------------------


@click.group("push")
def push_group() -> None:
    """Push messages through the HTTP API."""


@push_group.command("simple")
@_api_options
@click.option(
    "--delivery-type",
    type=click.Choice(["user", "android", "ios"]),
    required=True,
    help="user: a user ID; android/ios: a device ID.",
)
@click.option("--target", "target_id", required=True, help="The device ID or user ID.")
@click.option("--title", required=True)
@click.option("--content", required=True)
@click.option("--msg-key", default=None, help="Customer message ID (generated if absent).")
@click.option(
    "--expired-seconds", type=click.IntRange(1, 2_592_000), default=None, help="Default 259200."
)
@click.option("--ext", multiple=True, metavar="KEY=VALUE", help="Extra fields (repeatable).")
@_json_option
def push_simple(
    api: str,
    key: str,
    delivery_type: str,
    target_id: str,
    title: str,
    content: str,
    msg_key: str | None,
    expired_seconds: int | None,
    ext: tuple[str, ...],
    as_json: bool,
) -> None:
    """Push one message to a device or a user."""
    body: dict[str, Any] = {
        "delivery_type": delivery_type,
        "target_id": target_id,
        "title": title,
        "content": content,
    }
    if msg_key is not None:
        body["msg_key"] = msg_key
    if expired_seconds is not None:
        body["expired_seconds"] = expired_seconds
    if ext:
        pairs = [item.partition("=") for item in ext]
        if any(not sep for _, sep, _ in pairs):
            raise click.BadParameter("expected KEY=VALUE", param_hint="--ext")
        body["ext"] = {k: v for k, _, v in pairs}
    answer = _call(api, key, "POST", "/v1/push/simple", json=body)
    if as_json:
        _print_json(answer)
        return
    table = Table(show_header=False, box=None)
    table.add_row("message_id", str(answer.get("message_id")))
    table.add_row("msg_key", str(answer.get("msg_key")))
    table.add_row("status", _status_text(int(answer.get("status", 99999999))))
    if answer.get("duplicate"):
        table.add_row("duplicate", "yes: the same push was accepted before")
    _console().print(table)


# --- pushgate messages -----------------------------------------------------------


@click.group("messages")
def messages_group() -> None:
    """Read the message list, search it, show push details."""


def _messages_table(items: list[dict[str, Any]]) -> Table:
    table = Table(show_lines=False)
    for name in ("Message ID", "Customer message ID", "Push type", "Delivery"):
        table.add_column(name, no_wrap=True)
    table.add_column("Target ID", no_wrap=True)
    table.add_column("Title")
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for item in items:
        table.add_row(
            item["message_id"],
            item["msg_key"],
            item["push_type"],
            DELIVERY_LABELS.get(item["delivery_type"], item["delivery_type"]),
            item["target_id"],
            item["title"],
            item["created_at"],
            _status_text(int(item["status"])),
        )
    return table


@messages_group.command("list")
@_api_options
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", default=None, help="next_cursor of the previous page.")
@_json_option
def messages_list(api: str, key: str, limit: int, cursor: str | None, as_json: bool) -> None:
    """The message list: simple and template pushes of the last 30 days, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    answer = _call(api, key, "GET", "/v1/messages", params=params)
    if as_json:
        _print_json(answer)
        return
    console = _console()
    console.print(_messages_table(answer["items"]))
    if answer.get("next_cursor"):
        console.print(f"next page: --cursor {answer['next_cursor']}")
    else:
        console.print(f"{len(answer['items'])} message(s); no more pages")


@messages_group.command("search")
@_api_options
@click.option("--target", "target_id", required=True, help="The exact device ID or user ID.")
@click.option("--msg-key", required=True, help="The exact customer message ID.")
@_json_option
def messages_search(api: str, key: str, target_id: str, msg_key: str, as_json: bool) -> None:
    """Find the message with this target and customer message ID (multiple pushes too)."""
    answer = _call(
        api, key, "GET", "/v1/messages", params={"target_id": target_id, "msg_key": msg_key}
    )
    if as_json:
        _print_json(answer)
        return
    if not answer["items"]:
        raise click.ClickException(
            f"no message with target {target_id!r} and msg_key {msg_key!r} in the last 30 days"
        )
    _console().print(_messages_table(answer["items"]))


@messages_group.command("show")
@_api_options
@click.argument("message_id")
@_json_option
def messages_show(api: str, key: str, message_id: str, as_json: bool) -> None:
    """Push details of MESSAGE_ID: status, expiry, modification time, deliveries."""
    answer = _call(api, key, "GET", f"/v1/messages/{quote(message_id, safe='')}")
    if as_json:
        _print_json(answer)
        return
    console = _console()
    table = Table(show_header=False, box=None)
    rows = [
        ("Message ID", answer["message_id"]),
        ("Customer message ID", answer["msg_key"]),
        ("Push type", answer["push_type"]),
        ("Delivery", DELIVERY_LABELS.get(answer["delivery_type"], answer["delivery_type"])),
        ("Target ID", answer["target_id"]),
        ("Title", answer["title"]),
        ("Push status", f"{answer['status']} {answer.get('status_name', '')}"),
        ("", answer.get("status_description", "")),
        ("Created", answer["created_at"]),
        ("Expiry time", answer["expires_at"]),
        ("Modification time", answer["modified_at"]),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    deliveries = answer.get("deliveries") or []
    if deliveries:
        per_device = Table(title="Deliveries")
        for name in ("Device ID", "Status", "Modified"):
            per_device.add_column(name, no_wrap=True)
        for d in deliveries:
            per_device.add_row(d["device_id"], _status_text(int(d["status"])), d["modified_at"])
        console.print(per_device)
    else:
        console.print("no device deliveries")


# --- pushgate status-codes ---------------------------------------------------------


@click.command("status-codes")
@_api_options
@click.option("--channel", default=None, help="common, apns, huawei, xiaomi, oppo, vivo, fcm.")
@_json_option
def status_codes(api: str, key: str, channel: str | None, as_json: bool) -> None:
    """The status-code catalog the API serves."""
    params = {} if channel is None else {"channel": channel}
    answer = _call(api, key, "GET", "/v1/status-codes", params=params)
    if as_json:
        _print_json(answer)
        return
    table = Table()
    for name in ("Channel", "Code", "Name", "Description"):
        table.add_column(name, no_wrap=name != "Description")
    for item in answer["items"]:
        table.add_row(item["channel"], str(item["code"]), item["name"], item["description"])
    _console().print(table)


# --- pushgate load ---------------------------------------------------------------


@click.group("load")
def load_group() -> None:
    """Load generators against a running gateway."""


@load_group.command("push")
@_api_options
@click.option("--type", "push_type", type=click.Choice(["simple", "multiple"]), default="simple")
@click.option("--count", type=click.IntRange(1), default=2000, show_default=True, help="API calls.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=32, show_default=True)
@click.option(
    "--targets",
    type=click.IntRange(1, 1000),
    default=1000,
    show_default=True,
    help="Targets per multiple call.",
)
@click.option("--delivery-type", type=click.Choice(["user", "android", "ios"]), default="android")
def load_push(
    api: str,
    key: str,
    push_type: str,
    count: int,
    concurrency: int,
    targets: int,
    delivery_type: str,
) -> None:
    """Measure the push API's throughput: accepted pushes per second.

    Sends COUNT push calls from CONCURRENCY concurrent clients (one message
    per simple call, TARGETS per multiple call, each to its own new target)
    and prints calls/s, accepted messages/s and call latency percentiles.
    """
    report = trio.run(
        _load, api, key, push_type, count, concurrency, targets, delivery_type, time.time_ns()
    )
    click.echo(report.text())
    if report.errors:
        raise click.ClickException(f"{report.errors} call(s) failed; first: {report.first_error}")


class LoadReport:
    def __init__(self, push_type: str, concurrency: int) -> None:
        self.push_type = push_type
        self.concurrency = concurrency
        self.calls = 0
        self.accepted = 0
        self.errors = 0
        self.first_error = ""
        self.latencies: list[float] = []
        self.elapsed = 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

    def text(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        return (
            f"type={self.push_type} calls={self.calls} errors={self.errors}"
            f" accepted={self.accepted} concurrency={self.concurrency}"
            f" seconds={self.elapsed:.2f}\n"
            f"calls_per_second={self.calls / elapsed:.0f}"
            f" accepted_pushes_per_second={self.accepted / elapsed:.0f}\n"
            f"latency_ms p50={self.percentile(0.5) * 1000:.1f}"
            f" p90={self.percentile(0.9) * 1000:.1f}"
            f" p99={self.percentile(0.99) * 1000:.1f}"
            f" max={max(self.latencies, default=0) * 1000:.1f}"
        )


async def _load(
    api: str,
    key: str,
    push_type: str,
    count: int,
    concurrency: int,
    targets: int,
    delivery_type: str,
    run_id: int,
) -> LoadReport:
    report = LoadReport(push_type, concurrency)
    next_call = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    prefix = f"load-{run_id:x}"

    def body(n: int) -> tuple[str, dict[str, Any]]:
        common = {"delivery_type": delivery_type, "title": "load", "content": f"call {n}"}
        if push_type == "simple":
            return "/v1/push/simple", {**common, "target_id": f"{prefix}-{n}"}
        batch = [{"target_id": f"{prefix}-{n}-{i}"} for i in range(targets)]
        return "/v1/push/multiple", {**common, "targets": batch}

    async with httpx.AsyncClient(
        base_url=api.rstrip("/"),
        headers={"authorization": f"Bearer {key}"},
        timeout=120.0,
        limits=limits,
    ) as client:

        async def worker() -> None:
            for n in next_call:
                path, payload = body(n)
                started = trio.current_time()
                error = ""
                try:
                    response = await client.post(path, json=payload)
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    if response.is_success:
                        answer = response.json()
                        report.accepted += len(answer.get("messages", [None]))
                    else:
                        error = f"HTTP {response.status_code} {response.text[:200]}"
                report.latencies.append(trio.current_time() - started)
                report.calls += 1
                if error:
                    report.errors += 1
                    report.first_error = report.first_error or error

        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        report.elapsed = trio.current_time() - started
    return report


def register(main: click.Group) -> None:
    """Add the operator commands to the `pushgate` group."""
    for command in (push_group, messages_group, status_codes, load_group):
        main.add_command(command)

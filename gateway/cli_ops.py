"""Operator commands over the HTTP management API: push, read messages, load-test.

They talk to a running gateway like any backend would (`--api`, `--key`, or
PUSHGATE_API_URL / PUSHGATE_API_KEY), print tables with rich, and exit
non-zero with the API's error code and message when a call fails.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli_http import api_options, call, json_option, make_console, print_json, status_text
from gateway.cli_load import load_group

DELIVERY_LABELS = {"user": "User dimension", "android": "Device ID_Android", "ios": "Device ID_iOS"}

# --- pushgate push ---------------------------------------------------------------


@click.group("push")
def push_group() -> None:
    """Push messages through the HTTP API."""


@push_group.command("simple")
@api_options
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
@json_option
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
    answer = call(api, key, "POST", "/v1/push/simple", json=body)
    if as_json:
        print_json(answer)
        return
    table = Table(show_header=False, box=None)
    table.add_row("message_id", str(answer.get("message_id")))
    table.add_row("msg_key", str(answer.get("msg_key")))
    table.add_row("status", status_text(int(answer.get("status", 99999999))))
    if answer.get("duplicate"):
        table.add_row("duplicate", "yes: the same push was accepted before")
    make_console().print(table)


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
            status_text(int(item["status"])),
        )
    return table


@messages_group.command("list")
@api_options
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--cursor", default=None, help="next_cursor of the previous page.")
@json_option
def messages_list(api: str, key: str, limit: int, cursor: str | None, as_json: bool) -> None:
    """The message list: simple and template pushes of the last 30 days, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    answer = call(api, key, "GET", "/v1/messages", params=params)
    if as_json:
        print_json(answer)
        return
    console = make_console()
    console.print(_messages_table(answer["items"]))
    if answer.get("next_cursor"):
        console.print(f"next page: --cursor {answer['next_cursor']}")
    else:
        console.print(f"{len(answer['items'])} message(s); no more pages")


@messages_group.command("search")
@api_options
@click.option("--target", "target_id", required=True, help="The exact device ID or user ID.")
@click.option("--msg-key", required=True, help="The exact customer message ID.")
@json_option
def messages_search(api: str, key: str, target_id: str, msg_key: str, as_json: bool) -> None:
    """Find the message with this target and customer message ID (multiple pushes too)."""
    answer = call(
        api, key, "GET", "/v1/messages", params={"target_id": target_id, "msg_key": msg_key}
    )
    if as_json:
        print_json(answer)
        return
    if not answer["items"]:
        raise click.ClickException(
            f"no message with target {target_id!r} and msg_key {msg_key!r} in the last 30 days"
        )
    make_console().print(_messages_table(answer["items"]))


@messages_group.command("show")
@api_options
@click.argument("message_id")
@json_option
def messages_show(api: str, key: str, message_id: str, as_json: bool) -> None:
    """Push details of MESSAGE_ID: status, expiry, modification time, deliveries."""
    answer = call(api, key, "GET", f"/v1/messages/{quote(message_id, safe='')}")
    if as_json:
        print_json(answer)
        return
    console = make_console()
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
            per_device.add_row(d["device_id"], status_text(int(d["status"])), d["modified_at"])
        console.print(per_device)
    else:
        console.print("no device deliveries")


# --- pushgate status-codes ---------------------------------------------------------


@click.command("status-codes")
@api_options
@click.option("--channel", default=None, help="common, apns, huawei, xiaomi, oppo, vivo, fcm.")
@json_option
def status_codes(api: str, key: str, channel: str | None, as_json: bool) -> None:
    """The status-code catalog the API serves."""
    params = {} if channel is None else {"channel": channel}
    answer = call(api, key, "GET", "/v1/status-codes", params=params)
    if as_json:
        print_json(answer)
        return
    table = Table()
    for name in ("Channel", "Code", "Name", "Description"):
        table.add_column(name, no_wrap=name != "Description")
    for item in answer["items"]:
        table.add_row(item["channel"], str(item["code"]), item["name"], item["description"])
    make_console().print(table)


def register(main: click.Group) -> None:
    """Add the operator commands to the `pushgate` group."""
    for command in (push_group, messages_group, status_codes, load_group):
        main.add_command(command)

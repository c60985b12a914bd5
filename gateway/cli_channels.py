"""`pushgate channels`: an app's vendor credentials and fallback policy over the HTTP
API (CONTRACT §6), registered through the `pushgate.commands` entry-point group.

    pushgate channels set apns --field team_id=ABCDE12345 --field key_id=KEY1234567 \\
        --field private_key=@AuthKey_KEY1234567.p8 --field topic=com.example.app \\
        --field environment=production
    pushgate channels set fcm --field service_account=@service-account.json
    pushgate channels set huawei --json-file huawei.json
    pushgate channels list
    pushgate channels delete xiaomi
    pushgate channels policy 30

A field's value `@PATH` is read from that file, so secrets stay out of the shell's
history. Secrets are never printed: the listing is the API's masked view.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.table import Table

from gateway.cli_http import api_options, call, json_option, make_console, print_json
from protocol import VENDORS


@click.group("channels")
def channels() -> None:
    """Vendor channels: credentials per vendor and the fallback policy."""


def _value(text: str) -> str:
    if not text.startswith("@"):
        return text
    path = Path(text[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.__class__.__name__}") from None


def _fields(json_file: str | None, pairs: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if json_file is not None:
        try:
            loaded = json.loads(Path(json_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise click.BadParameter(
                f"{exc.__class__.__name__}", param_hint="--json-file"
            ) from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must hold a JSON object", param_hint="--json-file")
        fields.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {name!r}", param_hint="--field")
        fields[name] = _value(value)
    if not fields:
        raise click.UsageError("give the credentials with --json-file or --field NAME=VALUE")
    return fields


@channels.command("set")
@click.argument("vendor", type=click.Choice(VENDORS))
@click.option("--json-file", type=click.Path(dir_okay=False), help="The fields as a JSON object.")
@click.option("--field", "pairs", multiple=True, help="NAME=VALUE (VALUE @PATH: read from PATH).")
@api_options
@json_option
def set_channel(
    vendor: str, json_file: str | None, pairs: tuple[str, ...], api: str, key: str, as_json: bool
) -> None:
    """Set the app's credentials for VENDOR (replacing any)."""
    body = call(api, key, "PUT", f"/v1/channels/{vendor}", json=_fields(json_file, pairs))
    if as_json:
        print_json(body)
        return
    verb = "created" if body.get("created") else "replaced"
    click.echo(f"{vendor} channel {verb}")


@channels.command("list")
@api_options
@json_option
def list_channels(api: str, key: str, as_json: bool) -> None:
    """The app's channels, every secret masked."""
    body = call(api, key, "GET", "/v1/channels")
    if as_json:
        print_json(body)
        return
    table = Table("Vendor", "Fields (secrets masked)", "Updated")
    for item in body.get("items", []):
        fields = {k: v for k, v in item.items() if k not in ("vendor", "updated_at")}
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items())
        table.add_row(str(item.get("vendor")), text, str(item.get("updated_at", "")))
    make_console().print(table)


@channels.command("delete")
@click.argument("vendor", type=click.Choice(VENDORS))
@api_options
@json_option
def delete_channel(vendor: str, api: str, key: str, as_json: bool) -> None:
    """Remove the app's VENDOR channel."""
    body = call(api, key, "DELETE", f"/v1/channels/{quote(vendor)}")
    if as_json:
        print_json(body)
        return
    click.echo(f"{vendor} channel deleted")


@channels.command("policy")
@click.argument("fallback_after_seconds", type=click.IntRange(min=0), required=False)
@api_options
@json_option
def policy(fallback_after_seconds: int | None, api: str, key: str, as_json: bool) -> None:
    """Show, or set, the seconds without an ack before a delivery goes to the vendor."""
    if fallback_after_seconds is None:
        body = call(api, key, "GET", "/v1/channel-policy")
    else:
        payload = {"fallback_after_seconds": fallback_after_seconds}
        body = call(api, key, "PUT", "/v1/channel-policy", json=payload)
    if as_json:
        print_json(body)
        return
    click.echo(f"fallback_after_seconds={body['fallback_after_seconds']}")

"""What every operator command shares: the API options, one call to the API with
its errors turned into a clear exit, and printing."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import httpx
from rich.console import Console

from protocol.status_codes import lookup

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_API = "http://127.0.0.1:8080"


def api_options(fn: F) -> F:
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


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")(fn)


def make_console() -> Console:
    # Piped output gets wide lines rather than IDs wrapped over several rows.
    return Console(width=None if sys.stdout.isatty() else 240, soft_wrap=False)


def open_client(api: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=api.rstrip("/"), headers={"authorization": f"Bearer {key}"}, timeout=30.0
    )


def call(api: str, key: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One API call; an error answer or an unreachable API becomes a ClickException."""
    try:
        with open_client(api, key) as client:
            response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach the API at {api}: {exc}") from None
    return answer(response)


def answer(response: httpx.Response) -> dict[str, Any]:
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


def status_text(status: int) -> str:
    code = lookup(status)
    return f"{status} {code.name}" if code else str(status)


def print_json(body: dict[str, Any]) -> None:
    click.echo(json.dumps(body, indent=2, ensure_ascii=False))

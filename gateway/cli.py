"""`pushgate`: run the gateway, manage apps.

Other packages add commands through the entry-point group `pushgate.commands`
(the simulator's `pushgate sim` is one): the gateway never imports them.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
from importlib.metadata import entry_points

import click
import trio

from gateway.broker import is_valid_node_id
from gateway.cli_ops import register as register_ops_commands
from gateway.cli_vendor_flags import vendor_flags
from gateway.cluster import cluster_problem
from gateway.logs import setup_logging
from gateway.runtime import tune_gc
from gateway.server import Gateway
from gateway.settings import AppDeclaration, Settings
from gateway.store import App, store_for, store_problem, store_where
from gateway.supervisor import SUPERVISOR_PID_ENV, supervise, watch_supervisor
from gateway.vendor_settings import FallbackSettings, VendorSettings
from protocol import is_valid_id

log = logging.getLogger("pushgate.cli")
COMMAND_GROUP = "pushgate.commands"


def _parse_apps(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[AppDeclaration, ...]:
    try:
        return tuple(AppDeclaration.parse(v) for v in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group()
@click.version_option(package_name="pushgate")
def main() -> None:
    """pushgate: a self-hosted push gateway."""


@main.command()
@click.option(
    "--db",
    envvar="PUSHGATE_DB",
    help="The store: a SQLite file path (default"
    " ./pushgate.db) or a postgresql:// URL; same as --store.",
)
@click.option("--store", envvar="PUSHGATE_STORE", help="Same as --db.")
@click.option(
    "--broker",
    envvar="PUSHGATE_BROKER",
    help="redis://HOST:PORT/N: run as one node of many sharing --store (PostgreSQL).",
)
@click.option(
    "--broker-prefix",
    default="pushgate:",
    envvar="PUSHGATE_BROKER_PREFIX",
    show_default=True,
    help="Prefix of every broker key and channel: one per deployment.",
)
@click.option(
    "--sweep-interval",
    default=3.0,
    envvar="PUSHGATE_SWEEP_INTERVAL",
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between re-reads of the unacked deliveries of this node's devices (with"
    " --broker): how long a lost hint delays a message.",
)
@click.option(
    "--workers",
    default=1,
    envvar="PUSHGATE_WORKERS",
    show_default=True,
    type=click.IntRange(1, 64),
    help="Node processes on the same ports (SO_REUSEPORT), supervised; needs --broker.",
)
@click.option("--node-id", envvar="PUSHGATE_NODE_ID", help="This node's ID (default: made up).")
@click.option("--reuse-port", is_flag=True, hidden=True, help="Listen with SO_REUSEPORT.")
@click.option("--host", default="127.0.0.1", envvar="PUSHGATE_HOST", show_default=True)
@click.option("--api-port", default=8080, envvar="PUSHGATE_API_PORT", show_default=True)
@click.option("--ws-port", default=8081, envvar="PUSHGATE_WS_PORT", show_default=True)
@click.option("--tcp-port", default=8082, envvar="PUSHGATE_TCP_PORT", show_default=True)
@click.option(
    "--heartbeat",
    default=30,
    envvar="PUSHGATE_HEARTBEAT",
    show_default=True,
    type=click.IntRange(1, 3600),
    help="Seconds; a device silent for twice this is disconnected.",
)
@click.option("--hello-timeout", default=10.0, envvar="PUSHGATE_HELLO_TIMEOUT", show_default=True)
@click.option(
    "--app",
    "apps",
    multiple=True,
    envvar="PUSHGATE_APP",
    callback=_parse_apps,
    help="APP_ID:API_KEY:SECRET, repeatable; declares an app at start.",
)
@click.option(
    "--verify-app",
    "verify_apps",
    multiple=True,
    envvar="PUSHGATE_VERIFY_APP",
    help="APP_ID whose pushes wait for approval (status -1); repeatable.",
)
@click.option("--max-payload", default=4096, envvar="PUSHGATE_MAX_PAYLOAD", show_default=True)
@click.option("--outbox-limit", default=1024, envvar="PUSHGATE_OUTBOX_LIMIT", show_default=True)
@click.option(
    "--backlog-page",
    default=100,
    envvar="PUSHGATE_BACKLOG_PAGE",
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Messages of a device's backlog read (and held in memory) at a time.",
)
@click.option(
    "--ack-rate",
    default=10_000.0,
    envvar="PUSHGATE_ACK_RATE",
    show_default=True,
    type=click.FloatRange(min=1),
    help="Message ids one connection may ack per second; past it its socket is read slower.",
)
@click.option(
    "--max-connections",
    default=19_000,
    envvar="PUSHGATE_MAX_CONNECTIONS",
    show_default=True,
    type=click.IntRange(min=1),
    help="Device connections held at once; past it: WebSocket 503, TCP error server_busy.",
)
@click.option(
    "--tls-cert",
    envvar="PUSHGATE_TLS_CERT",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate (chain): with --tls-key, every listener speaks TLS.",
)
@click.option(
    "--tls-key",
    envvar="PUSHGATE_TLS_KEY",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM private key of --tls-cert.",
)
@click.option(
    "--ws-origin",
    "ws_origins",
    multiple=True,
    envvar="PUSHGATE_WS_ORIGIN",
    help="Allowed browser Origin for WebSocket upgrades (repeatable); requests without"
    " an Origin header (native apps) are always allowed. Default: any origin.",
)
@click.option(
    "--max-db-pages",
    type=click.IntRange(min=1),
    envvar="PUSHGATE_MAX_DB_PAGES",
    help="Cap the SQLite file at this many pages (a quota); past it pushes answer 503.",
)
@click.option(
    "--rate-limit",
    default=2000.0,
    envvar="PUSHGATE_RATE_LIMIT",
    show_default=True,
    type=click.FloatRange(min=0),
    help="/v1 calls per second per app (token bucket); 0 turns the limit off.",
)
@click.option(
    "--rate-burst",
    default=4000,
    envvar="PUSHGATE_RATE_BURST",
    show_default=True,
    type=click.IntRange(min=1),
    help="Calls an app may make at once before --rate-limit applies.",
)
@click.option(
    "--purge-interval",
    default=60.0,
    envvar="PUSHGATE_PURGE_INTERVAL",
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between purges of records older than 30 days.",
)
@click.option(
    "--max-body",
    default=16 * 1024 * 1024,
    envvar="PUSHGATE_MAX_BODY",
    show_default=True,
    type=click.IntRange(min=1024),
    help="Bytes of a /v1/push/multiple request body (other routes: at most 1 MiB); past it 413.",
)
@click.option(
    "--max-api-connections",
    default=512,
    envvar="PUSHGATE_MAX_API_CONNECTIONS",
    show_default=True,
    type=click.IntRange(min=1),
    help="HTTP API connections held at once (apart from --max-connections of devices).",
)
@click.option(
    "--http-idle-timeout",
    default=5.0,
    envvar="PUSHGATE_HTTP_IDLE_TIMEOUT",
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds for a request head to arrive, and a keep-alive connection to stay idle.",
)
@click.option(
    "--http-body-timeout",
    default=30.0,
    envvar="PUSHGATE_HTTP_BODY_TIMEOUT",
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds for a whole request body to arrive; past it 408.",
)
@click.option(
    "--log-level",
    default="info",
    envvar="PUSHGATE_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@vendor_flags
def serve(
    db: str | None,
    store: str | None,
    broker: str | None,
    broker_prefix: str,
    sweep_interval: float,
    workers: int,
    node_id: str | None,
    reuse_port: bool,
    host: str,
    api_port: int,
    ws_port: int,
    tcp_port: int,
    heartbeat: int,
    hello_timeout: float,
    apps: tuple[AppDeclaration, ...],
    verify_apps: tuple[str, ...],
    max_payload: int,
    outbox_limit: int,
    backlog_page: int,
    ack_rate: float,
    max_connections: int,
    tls_cert: str | None,
    tls_key: str | None,
    ws_origins: tuple[str, ...],
    max_db_pages: int | None,
    rate_limit: float,
    rate_burst: int,
    purge_interval: float,
    max_body: int,
    max_api_connections: int,
    http_idle_timeout: float,
    http_body_timeout: float,
    log_level: str,
    vendor_settings: VendorSettings,
    fallback_settings: FallbackSettings,
) -> None:
    """Run the gateway: WebSocket, TCP and HTTP API in one process."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if db is not None and store is not None and db != store:
        raise click.UsageError("--db and --store name the same thing: give one")
    location = store or db or "./pushgate.db"
    if workers > 1 and broker is None:
        raise click.UsageError(
            "--workers needs --broker (and a PostgreSQL --store): the workers are nodes"
            " that share state through them"
        )
    if node_id is not None and not is_valid_node_id(node_id):
        raise click.BadParameter("1-64 of A-Z a-z 0-9 . _ -", param_hint="--node-id")
    if workers > 1:
        sys.exit(supervise(workers, sys.argv[1:], log_level=log_level))
    setup_logging(log_level)
    settings = Settings(
        db=location,
        broker=broker,
        broker_prefix=broker_prefix,
        sweep_interval=sweep_interval,
        node_id=node_id,
        reuse_port=reuse_port,
        host=host,
        api_port=api_port,
        ws_port=ws_port,
        tcp_port=tcp_port,
        heartbeat=heartbeat,
        hello_timeout=hello_timeout,
        apps=apps,
        verify_apps=verify_apps,
        max_payload=max_payload,
        outbox_limit=outbox_limit,
        backlog_page=backlog_page,
        ack_rate=ack_rate,
        max_connections=max_connections,
        tls_cert=tls_cert,
        tls_key=tls_key,
        ws_origins=frozenset(ws_origins) if ws_origins else None,
        max_db_pages=max_db_pages,
        rate_limit=rate_limit,
        rate_burst=rate_burst,
        purge_interval=purge_interval,
        max_body=max_body,
        max_api_connections=max_api_connections,
        http_idle_timeout=http_idle_timeout,
        http_body_timeout=http_body_timeout,
        vendor=vendor_settings,
        fallback=fallback_settings,
    )
    tune_gc()
    try:
        trio.run(_serve, settings)
    except BaseException as exc:
        # A store that cannot be opened is one clear line, not a traceback (pg branch).
        if (problem := store_problem(exc) or cluster_problem(exc)) is None:
            raise
        raise click.ClickException(problem) from None
    sys.exit(0)


async def _serve(settings: Settings) -> None:
    gateway = Gateway(settings)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    log.info("event=signal signal=%s", signal.Signals(signum).name)
                    gateway.request_stop()

            nursery.start_soon(watch)
            supervisor = os.environ.get(SUPERVISOR_PID_ENV)
            if supervisor is not None and supervisor.isdigit():
                nursery.start_soon(watch_supervisor, int(supervisor), gateway.request_stop)
            await gateway.run(announce=lambda line: print(line, flush=True))
            nursery.cancel_scope.cancel()


@main.group()
def app() -> None:
    """Manage apps (tenants)."""


@app.command("create")
@click.argument("name")
@click.option("--db", default="./pushgate.db", envvar="PUSHGATE_DB", show_default=True)
@click.option("--verify", is_flag=True, help="Pushes of this app wait for approval.")
def app_create(name: str, db: str, verify: bool) -> None:
    """Create app NAME (its app_id) and print its app_id, api_key and secret."""
    if not is_valid_id(name):
        raise click.BadParameter("1-128 characters, no whitespace", param_hint="NAME")
    api_key, secret = secrets.token_urlsafe(24), secrets.token_hex(16)
    if trio.run(_create_app, db, name, api_key, secret, verify) is None:
        raise click.ClickException(f"app {name!r} already exists in {store_where(db)}")
    click.echo(f"app_id={name}")
    click.echo(f"api_key={api_key}")
    click.echo(f"secret={secret}")


async def _create_app(db: str, name: str, api_key: str, secret: str, verify: bool) -> App | None:
    """The new app, through the store (its writer thread), or None if NAME exists."""
    store = store_for(db)  # a SQLite file or a postgresql:// URL (pg branch)
    await store.open()
    try:
        if await store.get_app(name) is not None:
            return None
        return await store.upsert_app(
            app_id=name, name=name, api_key=api_key, secret=secret, verify=verify
        )
    finally:
        await store.aclose()


def register_plugin_commands(group: click.Group) -> None:
    """Add the commands other installed packages register under `pushgate.commands`."""
    for entry in entry_points(group=COMMAND_GROUP):
        command = entry.load()
        if isinstance(command, click.Command):
            group.add_command(command, entry.name)


register_ops_commands(main)
register_plugin_commands(main)

if __name__ == "__main__":
    main()

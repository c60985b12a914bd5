"""`pushgate`: run the gateway, manage apps."""

from __future__ import annotations

import logging
import secrets
import signal
import sys

import click
import trio

from client_sim.sim_cli import sim
from gateway.cli_ops import register as register_ops_commands
from gateway.logs import setup_logging
from gateway.runtime import tune_gc
from gateway.server import Gateway
from gateway.settings import AppDeclaration, Settings
from gateway.store import queries
from gateway.store.schema import connect, migrate
from protocol import is_valid_id

log = logging.getLogger("pushgate.cli")


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
@click.option("--db", default="./pushgate.db", envvar="PUSHGATE_DB", show_default=True)
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
    "--sweep-interval",
    default=60.0,
    envvar="PUSHGATE_SWEEP_INTERVAL",
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between purges of records older than 30 days.",
)
@click.option(
    "--log-level",
    default="info",
    envvar="PUSHGATE_LOG_LEVEL",
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    db: str,
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
    sweep_interval: float,
    log_level: str,
) -> None:
    """Run the gateway: WebSocket, TCP and HTTP API in one process."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    setup_logging(log_level)
    settings = Settings(
        db=db,
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
        sweep_interval=sweep_interval,
    )
    tune_gc()
    trio.run(_serve, settings)
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
    conn = connect(db)
    try:
        migrate(conn)
        if queries.get_app(conn, name) is not None:
            raise click.ClickException(f"app {name!r} already exists in {db}")
        api_key, secret = secrets.token_urlsafe(24), secrets.token_hex(16)
        conn.execute("BEGIN IMMEDIATE")
        queries.upsert_app(
            conn,
            app_id=name,
            name=name,
            api_key=api_key,
            secret=secret,
            verify=verify,
            now=_now_ms(),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    click.echo(f"app_id={name}")
    click.echo(f"api_key={api_key}")
    click.echo(f"secret={secret}")


def _now_ms() -> int:
    from gateway.clock import SystemClock

    return SystemClock().now_ms()


register_ops_commands(main)
main.add_command(sim)

if __name__ == "__main__":
    main()

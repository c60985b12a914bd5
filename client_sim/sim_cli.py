"""`pushgate sim`: run a simulated fleet against a gateway and judge every delivery.

    pushgate sim --spawn-gateway --devices 2000 --behaviour flaky --messages 20000
    pushgate sim --api http://gw:8080 --ws ws://gw:8081 --app demo --key K --secret S \\
        --devices 30000 --processes 3 --source-addresses 127.0.0.2-127.0.0.4 \\
        --behaviour steady=3 --behaviour flaky --push-type multiple --rate 2000 --duration 60

Exit status: 0 when the oracle found nothing wrong, 1 when it found a loss,
a misdelivery or a delivery after expiry, 3 when the run could not happen,
130 when interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import click
import trio
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from . import report
from .behaviours import BehaviourParams
from .errors import HelloRejected
from .plan import BEHAVIOUR_NAMES, PUSH_TYPES, SimConfig
from .runner import Progress, SimError, SimResult, run_sim
from .spawn import SpawnError, spawned_gateway
from .worker import WorkerFailed

EXIT_FAILED = 1
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130


def parse_behaviours(values: tuple[str, ...]) -> tuple[tuple[str, float], ...]:
    """NAME or NAME=WEIGHT, repeatable."""
    result: dict[str, float] = {}
    for value in values:
        for item in value.split(","):
            name, _, weight = item.strip().partition("=")
            if name not in BEHAVIOUR_NAMES:
                raise click.BadParameter(
                    f"unknown behaviour {name!r}; choose from {', '.join(BEHAVIOUR_NAMES)}"
                )
            try:
                result[name] = float(weight) if weight else 1.0
            except ValueError:
                raise click.BadParameter(f"bad weight in {item!r}") from None
            if result[name] <= 0:
                raise click.BadParameter(f"weight of {name!r} must be positive")
    return tuple(result.items()) or (("steady", 1.0),)


def parse_addresses(value: str | None) -> tuple[str, ...]:
    """Source addresses: `127.0.0.2,127.0.0.3`, a range `127.0.0.2-127.0.0.9`, or a mix."""
    if not value:
        return ()
    addresses: list[str] = []
    for part in value.split(","):
        first, _, last = part.strip().partition("-")
        try:
            start = ipaddress.ip_address(first)
            end = ipaddress.ip_address(last) if last else start
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        if type(start) is not type(end) or int(end) < int(start):
            raise click.BadParameter(f"bad address range {part!r}")
        addresses += [str(ipaddress.ip_address(n)) for n in range(int(start), int(end) + 1)]
    return tuple(addresses)


def device_urls(urls: str, websocket: bool) -> str:
    """Comma-separated gateway nodes' URLs (devices are spread over them), normalised."""
    return ",".join(device_url(u.strip(), websocket) for u in urls.split(",") if u.strip())


def device_url(url: str, websocket: bool) -> str:
    """A WebSocket base URL gets the device path; a TCP URL stays as it is."""
    parts = urlsplit(url)
    if websocket and parts.path in ("", "/"):
        return url.rstrip("/") + "/v1/connect"
    return url


# Problems of the run, rather than bugs: reported in one line, exit status 3.
_KNOWN_PROBLEMS = (SimError, SpawnError, WorkerFailed, HelloRejected, OSError)


class Interrupted(Exception):
    """SIGTERM or SIGHUP: stop the run (children included) and exit."""


def single_exception(exc: BaseException) -> BaseException:
    """`exc`, or the one exception (not a Cancelled) nested in its groups."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(inner) != 1:
            return exc
        exc = inner[0]
    return exc


def known_problem(exc: BaseException) -> str | None:
    """A one-line description if `exc` (or the one exception in its groups) is
    a known problem of the run, else None."""
    exc = single_exception(exc)
    if isinstance(exc, HelloRejected):
        return f"the gateway refused the devices' hello: {exc} (check --app and --secret)"
    return str(exc) if isinstance(exc, _KNOWN_PROBLEMS) else None


class LiveView:
    """The live progress display: bars for connections, pushes, deliveries, acks."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self._last: Progress | None = None
        self._rate = 0.0
        self._phase = ""

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, p: Progress) -> None:
        last = self._last
        if last is not None and p.elapsed > last.elapsed:
            instant = (p.accepted - last.accepted) / (p.elapsed - last.elapsed)
            self._rate = 0.7 * self._rate + 0.3 * instant
        self._last = p
        if self.live is None:
            if p.phase != self._phase:
                self.console.print(f"[{p.elapsed:6.1f} s] {p.phase}")
                self._phase = p.phase
            return
        self.live.update(self.render(p), refresh=True)

    def render(self, p: Progress) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", min_width=12)
        table.add_column(width=32)
        table.add_column()

        def row(label: str, done: int, total: int | None, text: str) -> None:
            bar = ProgressBar(total=float(total or 1), completed=float(done if total else 0))
            table.add_row(label, bar if total else "", text)

        table.add_row("phase", p.phase, f"{p.elapsed:,.1f} s")
        row("connected", p.connected, p.devices, f"{p.connected:,} / {p.devices:,} devices")
        target = p.target_messages
        sent = f"{p.accepted:,}" + (f" / {target:,}" if target else "") + " accepted"
        sent += f"  {self._rate:,.0f} msg/s"
        if p.rejected:
            sent += f"  [red]{p.rejected:,} refused[/]"
        row("pushed", p.accepted, target, sent)
        row("delivered", p.delivered, p.expected, f"{p.delivered:,} / {p.expected:,}")
        row("acked", p.acked, p.expected, f"{p.acked:,}")
        table.add_row("arrivals", "", f"{p.arrivals:,} push frames, {p.storms} storms")
        return table


@click.command()
@click.option("--api", help="The gateway's HTTP API, e.g. http://127.0.0.1:8080.")
@click.option(
    "--ws",
    "ws_url",
    help="WebSocket URL of the gateway (…/v1/connect added if bare); several nodes:"
    " URLs separated by commas, each device on its own one, failing over to the next"
    " when that one is lost.",
)
@click.option(
    "--tcp", "tcp_url", help="TCP URL(s) of the gateway (tcp://host:port); wins over --ws."
)
@click.option("--app", help="App id.")
@click.option("--key", "api_key", help="The app's API key.")
@click.option("--secret", help="The app's secret (signs device tokens).")
@click.option(
    "--spawn-gateway",
    is_flag=True,
    help="Start a local `pushgate serve` (free ports, temp db) and use it.",
)
@click.option(
    "--transport",
    type=click.Choice(["ws", "tcp"]),
    default="ws",
    show_default=True,
    help="With --spawn-gateway: how devices connect.",
)
@click.option(
    "--gateway-arg",
    "gateway_args",
    multiple=True,
    help="Extra argument for the spawned `pushgate serve` (repeatable).",
)
@click.option("--devices", default=100, show_default=True, type=click.IntRange(1))
@click.option(
    "--behaviour",
    "behaviours",
    multiple=True,
    help=f"NAME or NAME=WEIGHT, repeatable: {', '.join(BEHAVIOUR_NAMES)}. Default steady.",
)
@click.option("--push-type", type=click.Choice(PUSH_TYPES), default="simple", show_default=True)
@click.option(
    "--rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Messages per second; 0 = as fast as possible.",
)
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Seconds of pushing.")
@click.option("--messages", type=click.IntRange(0), help="Messages to push (default 1000).")
@click.option("--expired-seconds", default=3600, show_default=True, type=click.IntRange(1))
@click.option(
    "--batch-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Targets per multiple push.",
)
@click.option(
    "--concurrency", default=32, show_default=True, type=click.IntRange(1), help="HTTP in flight."
)
@click.option(
    "--processes",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Worker processes for the devices (each holds < 20,000 sockets).",
)
@click.option(
    "--source-addresses",
    help="Source IPs for the devices, round robin: 127.0.0.2,127.0.0.3 or 127.0.0.2-127.0.0.9.",
)
@click.option("--connect-concurrency", default=200, show_default=True, type=click.IntRange(1))
@click.option("--platform", type=click.Choice(["android", "ios", "mixed"]), default="android")
@click.option("--devices-per-user", default=2, show_default=True, type=click.IntRange(1))
@click.option(
    "--ack-mode",
    type=click.Choice(["immediate", "batched"]),
    default="immediate",
    show_default=True,
    help="Acks of the devices whose behaviour does not set them.",
)
@click.option("--flaky-uptime", default=20.0, show_default=True, type=click.FloatRange(0.01))
@click.option("--slow-ack-delay", default=0.05, show_default=True, type=click.FloatRange(0))
@click.option("--stall-every", default=5.0, show_default=True, type=click.FloatRange(0.01))
@click.option("--stall-for", default=2.0, show_default=True, type=click.FloatRange(0))
@click.option("--late-window", default=5.0, show_default=True, type=click.FloatRange(0))
@click.option("--storm-every", type=click.FloatRange(0.1), help="Seconds between storms.")
@click.option("--connect-timeout", default=60.0, show_default=True, type=click.FloatRange(0.1))
@click.option("--drain-timeout", default=30.0, show_default=True, type=click.FloatRange(0))
@click.option("--seed", default=0, show_default=True)
@click.option("--device-prefix", default="", help="Device id prefix (default sim-<random>-).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Latency PNG.")
@click.option("--quiet", is_flag=True, help="No live progress.")
def sim(
    api: str | None,
    ws_url: str | None,
    tcp_url: str | None,
    app: str | None,
    api_key: str | None,
    secret: str | None,
    spawn_gateway: bool,
    transport: str,
    gateway_args: tuple[str, ...],
    devices: int,
    behaviours: tuple[str, ...],
    push_type: str,
    rate: float,
    duration: float | None,
    messages: int | None,
    expired_seconds: int,
    batch_size: int,
    concurrency: int,
    processes: int,
    source_addresses: str | None,
    connect_concurrency: int,
    platform: str,
    devices_per_user: int,
    ack_mode: str,
    flaky_uptime: float,
    slow_ack_delay: float,
    stall_every: float,
    stall_for: float,
    late_window: float,
    storm_every: float | None,
    connect_timeout: float,
    drain_timeout: float,
    seed: int,
    device_prefix: str,
    json_path: str | None,
    plot_path: str | None,
    quiet: bool,
) -> None:
    """Simulate a fleet of devices, push to it through the HTTP API, and check
    with the delivery oracle that every message arrived where it should."""
    if not spawn_gateway:
        missing = [
            flag
            for flag, value in (
                ("--api", api),
                ("--ws or --tcp", ws_url or tcp_url),
                ("--app", app),
                ("--key", api_key),
                ("--secret", secret),
            )
            if not value
        ]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or use --spawn-gateway)")
    try:
        params = BehaviourParams(
            flaky_uptime=flaky_uptime,
            slow_ack_delay=slow_ack_delay,
            stall_every=stall_every,
            stall_for=stall_for,
            late_window=late_window,
        )
        config = SimConfig(
            api=api or "",
            url=device_urls(tcp_url, False) if tcp_url else device_urls(ws_url or "", True),
            app=app or "",
            api_key=api_key or "",
            secret=secret or "",
            devices=devices,
            behaviours=parse_behaviours(behaviours),
            params=params,
            storm_every=storm_every,
            platform=platform,  # type: ignore[arg-type]
            devices_per_user=devices_per_user,
            device_prefix=device_prefix,
            push_type=push_type,  # type: ignore[arg-type]
            rate=rate,
            messages=messages,
            duration=duration,
            batch_size=batch_size,
            expired_seconds=expired_seconds,
            concurrency=concurrency,
            processes=processes,
            source_addresses=parse_addresses(source_addresses),
            connect_concurrency=connect_concurrency,
            connect_timeout=connect_timeout,
            drain_timeout=drain_timeout,
            seed=seed,
            ack_mode=ack_mode,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if plot_path and importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("--plot needs matplotlib: pip install 'pushgate[sim]'")
    console = Console(stderr=False)
    try:
        result = trio.run(
            _run_interruptible, config, spawn_gateway, transport, gateway_args, console, quiet
        )
    except BaseException as exc:
        if isinstance(single_exception(exc), KeyboardInterrupt | Interrupted):
            console.print("[yellow]interrupted[/]: devices and gateway stopped, no report")
            sys.exit(EXIT_INTERRUPTED)
        problem = known_problem(exc)
        if problem is None:
            raise
        console.print(f"[bold red]error:[/] {problem}")
        sys.exit(EXIT_ERROR)
    report.render(result, console)
    if json_path:
        report.write_json(result, json_path)
        console.print(f"report written to {json_path}")
    if plot_path:
        report.plot(result, plot_path)
        console.print(f"latency plot written to {plot_path}")
    sys.exit(0 if result.ok else EXIT_FAILED)


async def _run_interruptible(
    config: SimConfig,
    spawn: bool,
    transport: str,
    gateway_args: tuple[str, ...],
    console: Console,
    quiet: bool,
) -> SimResult:
    """`_run`, ended by SIGTERM or SIGHUP as by Ctrl-C: the spawned gateway and
    the worker processes are stopped on the way out."""
    result: SimResult | None = None
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    raise Interrupted(signal.Signals(signum).name)

            nursery.start_soon(watch)
            result = await _run(config, spawn, transport, gateway_args, console, quiet)
            nursery.cancel_scope.cancel()
    assert result is not None
    return result


async def _run(
    config: SimConfig,
    spawn: bool,
    transport: str,
    gateway_args: tuple[str, ...],
    console: Console,
    quiet: bool,
) -> SimResult:
    if not spawn:
        return await _run_with_view(config, console, quiet)
    async with spawned_gateway(extra_args=gateway_args) as gw:
        url = gw.tcp if transport == "tcp" else gw.ws_url
        config = replace(
            config, api=gw.api, url=url, app=gw.app, api_key=gw.api_key, secret=gw.secret
        )
        console.print(f"spawned gateway: api={gw.api} devices={url} (log {gw.log_path})")
        try:
            return await _run_with_view(config, console, quiet)
        except BaseException:
            tail = gw.log_tail(15)
            if tail:
                console.print(Group("[yellow]gateway log (end):[/]", tail))
            raise


async def _run_with_view(config: SimConfig, console: Console, quiet: bool) -> SimResult:
    if quiet:
        return await run_sim(config)
    with LiveView(console) as view:
        update: Callable[[Progress], None] = view.update
        return await run_sim(config, on_progress=update)

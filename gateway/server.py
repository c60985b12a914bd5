"""One `trio.run`: WebSocket and TCP listeners, the HTTP API and the store, in one nursery."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from hypercorn.config import Config as HypercornConfig

from gateway.api import ApiContext, create_api
from gateway.api.http_server import ApiServer
from gateway.api.lean import LeanPushRoutes
from gateway.api.ratelimit import RateLimiter
from gateway.clock import Clock, SystemClock
from gateway.cluster import make_cluster, new_node_id
from gateway.cluster_sockets import open_shared_listeners
from gateway.context import SessionContext
from gateway.fallback import FallbackSender
from gateway.flusher import Flusher
from gateway.hub import Hub
from gateway.idle import IdleWatch
from gateway.limits import BUSY_MESSAGE, REFUSAL_TIMEOUT, ConnectionLimiter, refuse_tcp
from gateway.metrics import Metrics
from gateway.retention import RetentionPurge
from gateway.session import Session
from gateway.settings import Settings
from gateway.store import store_for, store_where
from gateway.tls import accept_tls, server_context
from gateway.transports import HandshakeFailed, TcpTransport, WebSocketTransport
from gateway.transports.base import Transport
from gateway.vendor_channels import VendorChannels

log = logging.getLogger("pushgate.server")


@dataclass(frozen=True, slots=True)
class Addresses:
    api: str
    ws: str
    tcp: str


def _peer(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Gateway:
    """The running gateway: owns the store, the hub and every listener."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        # The store the location names: a SQLite file, or a postgresql:// URL (pg branch).
        self.store = store_for(settings.db, clock=self.clock, max_pages=settings.max_db_pages)
        self.limiter = ConnectionLimiter(settings.max_connections)
        self._tls = (
            server_context(settings.tls_cert, settings.tls_key)
            if settings.tls_cert and settings.tls_key
            else None
        )
        self.metrics = Metrics(self.clock)
        self.hub = Hub(self.store, self.metrics)
        self.node_id = settings.node_id or new_node_id()
        self.started_ms = self.clock.now_ms()
        self.cluster = make_cluster(settings, self.store, self.clock, self.node_id, self.started_ms)
        if self.cluster is not None:
            self.cluster.attach(self.hub)
        self.metrics.watch_online(lambda: self.hub.online_count)
        self.store.observe_commits(self.metrics.store_commit)
        self.retention = RetentionPurge(
            self.store, self.clock, interval=settings.purge_interval, metrics=self.metrics
        )
        # Shared by every device connection: one task writes them all, one checks idleness.
        # Vendor channels (CONTRACT §6): credentials, and the sender of due fallbacks.
        self.vendor = VendorChannels(self.store, self.clock, os.environ, settings.vendor)
        self.fallback = FallbackSender(
            self.store, self.vendor, self.clock, self.metrics, settings.fallback
        )
        self.flusher = Flusher()
        self.idle = IdleWatch(settings.idle_timeout)
        self._session_context = SessionContext.create(
            self.hub, settings, self.clock, self.flusher, self.idle
        )
        self._stop = trio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def _declare_apps(self) -> list[str]:
        """Apps from --app/--verify-app; a first run with none gets `demo`.

        Returns the lines to print (the demo app's credentials)."""
        lines: list[str] = []
        verify = set(self.settings.verify_apps)
        for decl in self.settings.apps:
            app = await self.store.upsert_app(
                app_id=decl.app_id,
                name=decl.app_id,
                api_key=decl.api_key,
                secret=decl.secret,
                verify=decl.app_id in verify,
            )
            self.hub.remember_app(app)
        for app_id in verify - {d.app_id for d in self.settings.apps}:
            existing = await self.store.get_app(app_id)
            if existing is None:
                raise SystemExit(f"--verify-app {app_id}: no such app (declare it with --app)")
        if not self.settings.apps and await self.store.count_apps() == 0:
            api_key, secret = secrets.token_urlsafe(24), secrets.token_hex(16)
            await self.store.upsert_app(
                app_id="demo", name="demo", api_key=api_key, secret=secret, verify=False
            )
            lines += ["app_id=demo", f"api_key={api_key}", f"secret={secret}"]
        return lines

    async def run(
        self,
        *,
        task_status: trio.TaskStatus[Addresses] = trio.TASK_STATUS_IGNORED,
        announce: Callable[[str], None] = print,
    ) -> None:
        await self.store.open()
        try:
            for line in await self._declare_apps():
                announce(line)
            async with trio.open_nursery() as nursery:
                if self.cluster is not None:
                    # BrokerUnavailable here, before any listener, if Redis is not there.
                    await nursery.start(self.cluster.run)
                await self._serve(task_status, announce)
                nursery.cancel_scope.cancel()  # after the drain: routes are released
        finally:
            with trio.CancelScope(shield=True):
                await self.vendor.aclose()
                await self.store.aclose()
            log.info("event=stopped")

    async def _serve(
        self, task_status: trio.TaskStatus[Addresses], announce: Callable[[str], None]
    ) -> None:
        settings = self.settings
        host = settings.host
        ws_listeners = await self._open_listeners(settings.ws_port)
        tcp_listeners = await self._open_listeners(settings.tcp_port)
        ws_port = ws_listeners[0].socket.getsockname()[1]
        tcp_port = tcp_listeners[0].socket.getsockname()[1]
        ws_scheme, tcp_scheme = ("wss", "tls") if self._tls else ("ws", "tcp")
        ws_base = f"{ws_scheme}://{_url_host(host)}:{ws_port}"
        api_stop = trio.Event()
        async with trio.open_nursery() as root:
            root.start_soon(self.retention.run)
            fallback_scope = trio.CancelScope()
            root.start_soon(self._run_fallback, fallback_scope)
            api_binds: list[str] = await root.start(self._serve_api, api_stop, ws_base)
            connection_services = trio.CancelScope()
            root.start_soon(self._run_connection_services, connection_services)
            async with trio.open_nursery() as sessions:
                listener_scope = trio.CancelScope()

                sessions.start_soon(
                    self._listen, listener_scope, ws_listeners, tcp_listeners, sessions
                )
                addresses = Addresses(
                    api=api_binds[0],
                    ws=ws_base,
                    tcp=f"{tcp_scheme}://{_url_host(host)}:{tcp_port}",
                )
                if self.cluster is not None:
                    self.cluster.announce(host, api_binds[0], ws_port, tcp_port)
                announce(f"api={addresses.api}")
                announce(f"ws={addresses.ws}")
                announce(f"tcp={addresses.tcp}")
                log.info(
                    "event=ready api=%s ws=%s tcp=%s db=%s",
                    addresses.api,
                    addresses.ws,
                    addresses.tcp,
                    store_where(settings.db),  # never a URL's password (pg branch)
                )
                task_status.started(addresses)
                await self._stop.wait()
                log.info("event=shutdown_started online=%d", self.hub.online_count)
                listener_scope.cancel()
                self.hub.shutdown()
                # The API stops taking requests at once too (those in flight
                # finish and are committed), alongside the devices' drain, so
                # the two grace periods run together, not one after the other.
                api_stop.set()
                # Devices that got `bye shutdown` close on their own; whatever
                # is still open after the grace period (or never said hello)
                # is cancelled.
                with trio.move_on_after(settings.shutdown_grace):
                    await self.hub.drained.wait()
                sessions.cancel_scope.cancel()
            connection_services.cancel()
            fallback_scope.cancel()
            api_stop.set()
            self.retention.stop()

    async def _run_fallback(self, scope: trio.CancelScope) -> None:
        with scope:
            await self.fallback.run()

    async def _run_connection_services(self, scope: trio.CancelScope) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.flusher.run)
                nursery.start_soon(self.idle.run)

    async def _listen(
        self,
        scope: trio.CancelScope,
        ws_listeners: list[trio.SocketListener],
        tcp_listeners: list[trio.SocketListener],
        sessions: trio.Nursery,
    ) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    _serve_listeners,
                    self._connection_handler(self._open_ws, self._refuse_ws),
                    ws_listeners,
                    sessions,
                )
                nursery.start_soon(
                    _serve_listeners,
                    self._connection_handler(self._open_tcp, refuse_tcp),
                    tcp_listeners,
                    sessions,
                )

    async def _serve_api(
        self, api_stop: trio.Event, ws_base: str, *, task_status: trio.TaskStatus[list[str]]
    ) -> None:
        settings = self.settings
        config = HypercornConfig()
        config.accesslog = None
        config.errorlog = logging.getLogger("pushgate.http")
        config.graceful_timeout = settings.shutdown_grace
        # The request head (or the next one on a kept-alive connection) must arrive
        # within this; the body has json_body's own deadline.
        config.keep_alive_timeout = settings.http_idle_timeout
        config.ssl_handshake_timeout = settings.hello_timeout
        context = ApiContext(
            hub=self.hub, store=self.store, settings=settings, clock=self.clock, ws_url=ws_base
        )
        context.vendor = self.vendor
        context.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        context.node_id, context.started_ms = self.node_id, self.started_ms
        context.cluster = self.cluster
        lean = LeanPushRoutes(create_api(context), context)
        server = ApiServer(
            lean,
            config,
            max_connections=settings.max_api_connections,
            send_timeout=settings.send_timeout,
            tls=self._tls,
            lean=lean,
        )
        listeners = await self._open_listeners(settings.api_port)
        port = listeners[0].socket.getsockname()[1]
        scheme = "https" if self._tls else "http"
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listeners, api_stop)
            task_status.started([f"{scheme}://{_url_host(settings.host)}:{port}"])

    async def _open_listeners(self, port: int) -> list[trio.SocketListener]:
        if self.settings.reuse_port:  # serve --workers: the processes share the ports
            return await open_shared_listeners(port, self.settings.host)
        return await trio.open_tcp_listeners(port, host=self.settings.host)

    def _connection_handler(
        self,
        opener: Callable[[trio.SocketStream], Awaitable[Transport | None]],
        refuse: Callable[[trio.abc.Stream], Awaitable[None]],
    ) -> Callable[[trio.SocketStream], Awaitable[None]]:
        async def handle(stream: trio.SocketStream) -> None:
            # One connection's failure must never reach another: log and drop.
            try:
                if not self.limiter.admit():
                    await self._refuse(stream, refuse)
                    return
                try:
                    transport = await opener(stream)
                    if transport is None:
                        return
                    await Session(transport, self._session_context).run()
                finally:
                    self.limiter.release()
            except Exception:
                log.exception("event=session_crashed peer=%s", _peer(stream))
            finally:
                await trio.aclose_forcefully(stream)

        return handle

    async def _refuse(
        self, stream: trio.SocketStream, refuse: Callable[[trio.abc.Stream], Awaitable[None]]
    ) -> None:
        """Past max_connections: say server_busy (bounded in number and time)."""
        limiter = self.limiter
        polite = limiter.begin_refusal()
        if limiter.refused % 1000 == 1:
            log.warning(
                "event=connection_refused reason=max_connections limit=%d refused_total=%d",
                limiter.limit,
                limiter.refused,
            )
        if not polite:
            return
        try:
            with trio.move_on_after(REFUSAL_TIMEOUT):
                byte_stream = await self._secure(stream)
                if byte_stream is not None:
                    await refuse(byte_stream)
        finally:
            limiter.end_refusal()

    async def _refuse_ws(self, stream: trio.abc.Stream) -> None:
        transport = WebSocketTransport(stream, "?", self.settings.max_frame_size)
        try:
            await transport.handshake(refuse=(503, BUSY_MESSAGE))
        except (HandshakeFailed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _secure(self, stream: trio.SocketStream) -> trio.abc.Stream | None:
        """The TLS stream over `stream` when TLS is on (None if its handshake failed)."""
        if self._tls is None:
            return stream
        return await accept_tls(stream, self._tls, _peer(stream))

    async def _open_ws(self, stream: trio.SocketStream) -> Transport | None:
        _tune(stream)
        peer = _peer(stream)
        with trio.move_on_after(self.settings.hello_timeout) as scope:
            byte_stream = await self._secure(stream)
            if byte_stream is None:
                return None
            transport = WebSocketTransport(byte_stream, peer, self.settings.max_frame_size)
            try:
                await transport.handshake(origins=self.settings.ws_origins)
            except (HandshakeFailed, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.info("event=ws_handshake_failed peer=%s reason=%r", peer, str(exc))
                return None
        if scope.cancelled_caught:
            log.info("event=ws_handshake_timeout peer=%s", peer)
            return None
        return transport

    async def _open_tcp(self, stream: trio.SocketStream) -> Transport | None:
        _tune(stream)
        peer = _peer(stream)
        if self._tls is None:
            return TcpTransport(stream, peer, self.settings.max_frame_size)
        with trio.move_on_after(self.settings.hello_timeout):
            tls = await accept_tls(stream, self._tls, peer)
            if tls is not None:
                return TcpTransport(tls, peer, self.settings.max_frame_size)
        return None


async def _serve_listeners(
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    listeners: list[trio.SocketListener],
    handler_nursery: trio.Nursery,
) -> None:
    await trio.serve_listeners(handler, listeners, handler_nursery=handler_nursery)


def _tune(stream: trio.SocketStream) -> None:
    try:
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
    except OSError:
        pass

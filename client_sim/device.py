"""`Device`: a device that stays connected, acks, de-duplicates and reconnects.

    device = Device(DeviceConfig(url="ws://127.0.0.1:8081/v1/connect",
                                 app="demo", device_id="phone-1", secret=SECRET))
    async with trio.open_nursery() as nursery:
        await nursery.start(device.run)       # returns after the first welcome
        await device.bind("alice")
        await device.wait_for_pushes(1, timeout=5)
        await device.close()

Reconnects: after any disconnect (the gateway closed, the network broke, a
`bye` such as `idle_timeout` or `shutdown`) the device reconnects with
jittered exponential backoff, if `config.reconnect`; to the next address of
`config.urls` (round robin) unless the device dropped the connection itself.
One exception: a `bye` with reason `replaced` means another connection of the
same device took over (a second `hello` replaces the first), so this one stops
for good instead of fighting it for the slot: `run()` returns with
`stop_reason == "replaced"`.

Everything observable (`received`, `duplicates`, `welcomes`, ...) is plain
attributes, changed only by the device's own tasks; `wait_for()` wakes on
every change.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Literal

import trio

from protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bind,
    Bound,
    Bye,
    ByeReason,
    Error,
    ErrorCode,
    Frame,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Push,
    Unbind,
    Unbound,
    Welcome,
    bind_signature,
)

from .acker import PendingAck, ack_loop_for
from .backoff import Backoff
from .config import DeviceConfig
from .connection import open_device_connection
from .errors import ConnectionClosed, GatewayError, HelloRejected
from .received import ReceivedPush, wall_ms
from .transport import DeviceConnection

StopReason = Literal[
    "closed", "replaced", "disconnected", "rejected", "connect_failed", "cancelled"
]

# Failures of one connection attempt that a retry may cure.
_RETRYABLE = (OSError, trio.TooSlowError, ConnectionClosed, ProtocolError)


class Device:
    """One simulated device; see the module docstring. A Device runs once."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        on_push: Callable[[ReceivedPush], None] | None = None,
        on_duplicate: Callable[[ReceivedPush], None] | None = None,
        on_acked: Callable[[Sequence[str]], None] | None = None,
        on_connection: Callable[[bool], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        # Hooks for observers such as the simulator's fleet. None may block; an
        # exception from one ends run().
        # on_push: from the reader, for each new (non-duplicate) push.
        self.on_push = on_push
        # on_duplicate: from the reader, for each push whose id was seen before
        # (a fresh record: its `session` and `received_ms` are this arrival's).
        self.on_duplicate = on_duplicate
        # on_acked: after each `ack` frame went out, with its ids.
        self.on_acked = on_acked
        # on_connection: True after each `welcome`, False when that connection ends.
        self.on_connection = on_connection

        self.received: dict[str, ReceivedPush] = {}
        self.unique_pushes = 0
        self.duplicates = 0
        self.connected = False
        self.welcomes = 0
        self.session: str | None = None
        self.heartbeat: int | None = None
        self.server_clock_offset_ms: int | None = None  # gateway clock - ours, at welcome
        self.bound_user: str | None = None
        self.byes: list[str] = []
        self.errors: list[Error] = []
        self.protocol_errors: list[ProtocolError] = []
        self.unexpected_frames = 0
        self.replaced = False
        self.pings_sent = 0
        self.pongs = 0
        self.rtt: float | None = None  # seconds, last ping -> pong
        self.ack_frames_sent = 0
        self.acked_ids = 0
        self.connect_failures = 0
        self.last_disconnect: str | None = None
        self.stop_reason: StopReason | None = None
        self.url_index = 0  # into config.urls: where the next connect goes
        self.failovers = 0  # moves to the next address

        self._backoff = Backoff(config.backoff_base, config.backoff_cap, rng=rng)
        self._conn: DeviceConnection | None = None
        self._changed = trio.Event()
        self._closing = False
        self._ran = False
        self._run_scope: trio.CancelScope | None = None
        self._stopped = trio.Event()
        self._ping_sent_at: float | None = None
        self._bound_answers = 0
        self._unbound_answers = 0
        self._stall_until = -math.inf
        self._dropped = False  # the current connection ended by our own drop()

    def __repr__(self) -> str:
        state = "connected" if self.connected else (self.stop_reason or "disconnected")
        return f"<Device {self.config.app}/{self.config.device_id} {state}>"

    @property
    def url(self) -> str:
        """The address the next (or current) connection uses."""
        return self.config.urls[self.url_index]

    def _fail_over(self) -> None:
        urls = self.config.urls
        if len(urls) > 1:
            self.url_index = (self.url_index + 1) % len(urls)
            self.failovers += 1

    @property
    def connection(self) -> DeviceConnection | None:
        """The current connection (to send raw frames in tests), or None."""
        return self._conn

    # --- running ----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve frames and reconnect until `close()`, cancellation or a final stop.

        `task_status.started()` is called after the first `welcome`. Returns when
        the device stops (`stop_reason` says why). Raises `HelloRejected` if the
        gateway refuses the hello (retrying cannot help), and the connect error
        when `config.reconnect` is off and connecting fails.
        """
        if self._ran:
            raise RuntimeError("a Device runs once; make a new one")
        self._ran = True
        try:
            with trio.CancelScope() as self._run_scope:
                await self._run(task_status)
        finally:
            self.connected = False
            if self.stop_reason is None:
                self.stop_reason = "closed" if self._closing else "cancelled"
            self._stopped.set()
            self._notify()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        started = False
        while not self._closing:
            try:
                conn, welcome = await self._connect()
            except HelloRejected:
                self.stop_reason = "rejected"
                raise
            except _RETRYABLE as exc:
                self.connect_failures += 1
                self.last_disconnect = f"connect failed: {exc!r}"
                self._fail_over()
                self._notify()
                if not self.config.reconnect:
                    self.stop_reason = "connect_failed"
                    raise
                await trio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            await self._serve(conn, welcome, None if started else task_status)
            started = True
            if self._closing:
                self.stop_reason = "closed"
                return
            if self.replaced:
                self.stop_reason = "replaced"
                return
            if not self.config.reconnect:
                self.stop_reason = "disconnected"
                return
            if not self._dropped:
                self._fail_over()  # that node may be gone: the next one
            await trio.sleep(self._backoff.next_delay())

    async def _connect(self) -> tuple[DeviceConnection, Welcome]:
        """Open a connection, send `hello`, and wait for `welcome`."""
        cfg = self.config
        conn = await open_device_connection(
            self.url,
            max_frame_size=cfg.max_frame_size,
            connect_timeout=cfg.connect_timeout,
            write_timeout=cfg.write_timeout,
            close_timeout=cfg.close_timeout,
            ssl_context=cfg.ssl_context,
            local_address=cfg.local_address,
        )
        hello = Hello(
            v=PROTOCOL_VERSION,
            app=cfg.app,
            device=cfg.device_id,
            platform=cfg.platform,
            token=cfg.hello_token,
        )
        try:
            with trio.fail_after(cfg.connect_timeout):
                await conn.send_frame(hello)
                frame = await conn.receive_frame()
        except BaseException:
            await conn.aclose()
            raise
        if isinstance(frame, Welcome):
            return conn, frame
        await conn.aclose()
        if isinstance(frame, Error):
            self.errors.append(frame)
            self._notify()
            raise HelloRejected(frame.code, frame.message)
        if isinstance(frame, Bye):
            self.byes.append(frame.reason)
            self._notify()
            raise ConnectionClosed(None, f"bye {frame.reason!r} before welcome")
        raise ProtocolError(ErrorCode.UNKNOWN_FRAME_TYPE, f"expected welcome, got {frame.T!r}")

    async def _serve(
        self, conn: DeviceConnection, welcome: Welcome, task_status: trio.TaskStatus[None] | None
    ) -> None:
        """One connection's life after `welcome`; its tasks live in one nursery."""
        cfg = self.config
        send_acks, pending_acks = trio.open_memory_channel[PendingAck](cfg.ack_queue_size)
        ack_loop = ack_loop_for(cfg, self._count_acks)
        try:
            self._conn = conn
            self._dropped = False
            self.connected = True
            self.welcomes += 1
            self.session = welcome.session
            self.heartbeat = welcome.heartbeat
            self.server_clock_offset_ms = welcome.server_time - wall_ms()
            self._notify()
            if self.on_connection is not None:
                self.on_connection(True)
            if task_status is not None:
                task_status.started()
            async with trio.open_nursery() as nursery:
                scope = nursery.cancel_scope
                if cfg.send_pings and welcome.heartbeat > 0:
                    pings = partial(self._ping_loop, conn, welcome.heartbeat / 2)
                    nursery.start_soon(self._writer, pings, conn, scope)
                if ack_loop is not None:
                    acks = partial(ack_loop, conn, pending_acks)
                    nursery.start_soon(self._writer, acks, conn, scope)
                await self._read_loop(conn, welcome.heartbeat, send_acks if ack_loop else None)
                nursery.cancel_scope.cancel()
        finally:
            self._conn = None
            self.connected = False
            self._notify()
            if self.on_connection is not None:
                self.on_connection(False)
            await conn.aclose()

    async def _read_loop(
        self,
        conn: DeviceConnection,
        heartbeat: int,
        acks: trio.MemorySendChannel[PendingAck] | None,
    ) -> None:
        # With our pings going out, the gateway's pongs arrive every heartbeat/2:
        # silence for much longer than that means the connection is dead.
        use_idle_limit = self.config.send_pings and heartbeat > 0
        idle_limit = 2 * heartbeat + 1 if use_idle_limit else math.inf
        while True:
            try:
                with trio.fail_after(idle_limit):
                    frame = await conn.receive_frame()
            except ConnectionClosed as exc:
                self.last_disconnect = str(exc)
                return
            except ProtocolError as exc:
                self.protocol_errors.append(exc)
                self.last_disconnect = f"protocol error from the gateway: {exc}"
                return
            except trio.TooSlowError:
                self.last_disconnect = f"nothing from the gateway for {idle_limit} s"
                return
            if self._stall_until > trio.current_time():
                # stall(): the app is frozen; what follows stays in the socket.
                await trio.sleep_until(self._stall_until)
            if not await self._handle(frame, acks):
                return

    async def _handle(self, frame: Frame, acks: trio.MemorySendChannel[PendingAck] | None) -> bool:
        """Act on one frame; False when the connection should end."""
        if isinstance(frame, Push):
            await self._on_push(frame, acks)
            return True
        if isinstance(frame, Pong):
            self.pongs += 1
            if self._ping_sent_at is not None:
                self.rtt = trio.current_time() - self._ping_sent_at
        elif isinstance(frame, Bound):
            self.bound_user = frame.user
            self._bound_answers += 1
        elif isinstance(frame, Unbound):
            self.bound_user = None
            self._unbound_answers += 1
        elif isinstance(frame, Error):
            self.errors.append(frame)
        elif isinstance(frame, Bye):
            self.byes.append(frame.reason)
            self.replaced = self.replaced or frame.reason == ByeReason.REPLACED
            self._notify()
            return False
        else:
            # A second welcome or a device frame: not for us, harmless.
            self.unexpected_frames += 1
        self._notify()
        return True

    async def _on_push(self, push: Push, acks: trio.MemorySendChannel[PendingAck] | None) -> None:
        now = trio.current_time()
        record = ReceivedPush(
            push=push, received_at=now, received_ms=wall_ms(), session=self.session or ""
        )
        if push.id in self.received:
            self.duplicates += 1
            if self.on_duplicate is not None:
                self.on_duplicate(record)
        else:
            self.received[push.id] = record
            if len(self.received) > self.config.history_limit:
                del self.received[next(iter(self.received))]
            self.unique_pushes += 1
            if self.on_push is not None:
                self.on_push(record)
        self._notify()
        # Duplicates are acked again: the gateway resends until it sees an ack.
        if acks is not None:
            await acks.send((push.id, now))

    async def _writer(
        self,
        loop: Callable[[], Awaitable[None]],
        conn: DeviceConnection,
        session: trio.CancelScope,
    ) -> None:
        """Run a writer loop. It only ends when its write failed: the connection is
        gone, so end the session too (the reader may be blocked on a full ack queue)."""
        await loop()
        self.last_disconnect = f"write failed: {conn.close_reason}"
        session.cancel()

    async def _ping_loop(self, conn: DeviceConnection, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            self._ping_sent_at = trio.current_time()
            try:
                await conn.send_frame(Ping())
            except ConnectionClosed:
                return
            self.pings_sent += 1

    def _count_acks(self, ids: Sequence[str]) -> None:
        self.ack_frames_sent += 1
        self.acked_ids += len(ids)
        self._notify()
        if self.on_acked is not None:
            self.on_acked(ids)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # --- helpers for tests and the simulator -------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until `predicate()` holds; `trio.TooSlowError` after `timeout` seconds."""
        await trio.lowlevel.checkpoint()
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_for_pushes(self, n: int, timeout: float) -> None:
        """Wait until `n` distinct pushes arrived (duplicates do not count)."""
        await self.wait_for(lambda: self.unique_pushes >= n, timeout)

    async def ack(self, ids: Iterable[str]) -> None:
        """Ack these message ids now, in one frame (whatever the ack mode)."""
        conn = self._require_connection()
        batch = tuple(ids)
        await conn.send_frame(Ack(ids=batch))
        self._count_acks(batch)

    async def bind(self, user: str, sig: str | None = None, *, timeout: float = 10.0) -> str:
        """Bind this device to `user`; returns the user once the gateway sent `bound`.

        `sig` defaults to the bind signature computed from `config.secret`.
        Raises `GatewayError` if the gateway answers `error` (e.g. bad_signature),
        `ConnectionClosed` if the connection ends first, `trio.TooSlowError`.
        """
        if sig is None:
            cfg = self.config
            if cfg.secret is None:
                raise ValueError("bind() needs sig= when the config has no secret")
            sig = bind_signature(cfg.secret, cfg.app, cfg.device_id, user)
        await self._request(Bind(user=user, sig=sig), lambda: self._bound_answers, timeout)
        return user

    async def unbind(self, *, timeout: float = 10.0) -> None:
        """Remove this device's binding; returns once the gateway sent `unbound`."""
        await self._request(Unbind(), lambda: self._unbound_answers, timeout)

    @property
    def stalled(self) -> bool:
        """Reading is paused by `stall` now."""
        return self._stall_until > trio.current_time()

    def stall(self, seconds: float) -> None:
        """Stop reading for `seconds` (a frozen app, a slow phone): the next frame
        is handled only when the stall ends, and what follows waits in the socket
        buffers. Pings and acks still go out. A stall outlasts a reconnect."""
        self._stall_until = max(self._stall_until, trio.current_time() + seconds)

    async def drop(self) -> None:
        """Lose the current connection the way a network failure does: no `bye`,
        no close handshake. The device reconnects as after any other disconnect
        (if `config.reconnect`). Nothing happens while not connected."""
        if self._conn is not None:
            self._dropped = True
            await self._conn.abort()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop for good: close the connection gracefully, wait (bounded) for run() to end."""
        self._closing = True
        self._notify()
        with trio.move_on_after(timeout):
            if self._conn is not None:
                await self._conn.aclose()
            if self._run_scope is not None:
                self._run_scope.cancel()
            if self._ran:
                await self._stopped.wait()

    async def _request(
        self, frame: Bind | Unbind, answers: Callable[[], int], timeout: float
    ) -> None:
        """Send a request frame and wait for its answer or an `error`."""
        conn = self._require_connection()
        answered, errors, welcomes = answers(), len(self.errors), self.welcomes
        await conn.send_frame(frame)
        await self.wait_for(
            lambda: (
                answers() > answered
                or len(self.errors) > errors
                or not self.connected
                or self.welcomes != welcomes
            ),
            timeout,
        )
        if answers() > answered:
            return
        if len(self.errors) > errors:
            error = self.errors[errors]
            raise GatewayError(error.code, error.message)
        raise ConnectionClosed(None, f"connection lost before the answer to {frame.T!r}")

    def _require_connection(self) -> DeviceConnection:
        if self._conn is None:
            raise ConnectionClosed(None, "not connected")
        return self._conn

"""One device connection's life: the I/O driver of protocol.connection's state machine.

The handler task reads the hello (auth.py), then frames until the device
leaves or the connection closes; the state machine (`ServerConnection`) says
what each frame means, and the session acts: it asks the hub (which commits,
then routes), queues replies in its outbox (outbox.py), and lets feed.py and
acks.py do the rest. The hub sees it only as a `hub.Connection`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trio

from gateway.acks import AckFlow
from gateway.auth import STORE_MESSAGE, bind_allowed, receive_hello
from gateway.context import SessionContext, SessionStatistics
from gateway.feed import Feed
from gateway.ids import new_id
from gateway.outbox import Outbox, Writing
from gateway.store import Message, StoreUnavailable
from gateway.transports.base import Transport
from protocol import (
    Ack,
    Bind,
    Bye,
    ByeReason,
    ErrorCode,
    Frame,
    Ping,
    Pong,
    ProtocolError,
    Rejection,
    ServerConnection,
    Unbound,
    Vendor,
    VendorOk,
    Welcome,
    registration_problem,
)

log = logging.getLogger("pushgate.session")


class Session:
    # Slots: thousands of idle sessions, each without an instance dict.
    __slots__ = (
        "_acks",
        "_conn",
        "_context",
        "_feed",
        "_hello_vendor",
        "_last",
        "_outbox",
        "_scope",
        "_transport",
        "app_id",
        "delivered",
        "device_id",
        "platform",
        "session_id",
    )

    def __init__(self, transport: Transport, context: SessionContext) -> None:
        self._transport = transport
        self._context = context
        self._conn = ServerConnection(max_frame_size=context.settings.max_frame_size)
        self._outbox = Outbox(transport, self, context.outbox)
        self._feed = Feed(self, context.hub, self._outbox, context.flusher)
        self._scope = trio.CancelScope()
        self.session_id = new_id(context.clock.now_ms())
        self.app_id = self.device_id = self.platform = ""
        self._last = 0.0  # Trio time of the last frame received
        self._acks: AckFlow | None = None  # made by the first ack
        self._hello_vendor: tuple[str, str] | None = None  # (vendor, token) of the hello
        self.delivered = 0

    async def run(self) -> None:
        context = self._context
        try:
            with self._scope:
                if await self._accept():
                    await self._serve()
        finally:
            self._outbox.done()
            self._feed.stop()
            context.idle.unwatch(self)
            if self.device_id:
                await context.hub.detach(self)
                log.info("event=device_offline device=%s sent=%d", self.device_id, self.delivered)
            self._conn.closed()
            await self._transport.aclose_forcefully()

    async def _accept(self) -> bool:
        timeout = self._context.settings.hello_timeout
        hello = await receive_hello(self._transport, self._conn, self._context.hub, timeout)
        if hello is None:
            return False
        self.app_id, self.device_id, self.platform = hello.app, hello.device, hello.platform
        if hello.vendor is not None and hello.vendor_token is not None:  # checked by the hello
            self._hello_vendor = (hello.vendor, hello.vendor_token)
        return True

    async def _serve(self) -> None:
        # No local lives across the read loop: an idle connection waits there.
        if await self._attach() and await self._register_hello_vendor():
            await self._read()
        if self._conn.closing:
            await self._outbox.finish()  # the close queued (error, bye) may be ours to send

    async def _attach(self) -> bool:
        """Welcome, record the device online, and queue the first page of its backlog."""
        context, transport = self._context, self._transport
        log.info(
            "event=device_online app=%s device=%s platform=%s transport=%s peer=%s",
            *(self.app_id, self.device_id, self.platform, transport.name, transport.peer),
        )
        now_ms, heartbeat = context.clock.now_ms(), context.settings.heartbeat
        self.send(Welcome(session=self.session_id, heartbeat=heartbeat, server_time=now_ms))
        self._last = trio.current_time()
        context.idle.watch(self)
        # What is routed while the device is being recorded waits for the first page.
        first = self._feed.start(context.settings.backlog_page)
        try:
            user_id, page = await context.hub.attach(self, page_size=first.limit)
        except StoreUnavailable as exc:
            self._store_failed("hello", exc)  # fatal before the device is attached
            return False
        await trio.lowlevel.checkpoint()  # the routes of earlier commits first (Backlog.live)
        self._conn.attached()
        self._feed.attached(user_id, first, page)
        return True

    async def _register_hello_vendor(self) -> bool:
        """The vendor registration the hello carried (CONTRACT §6), recorded after welcome."""
        if self._hello_vendor is None:
            return True
        vendor, token = self._hello_vendor
        self._hello_vendor = None
        try:
            store = self._context.hub.store
            await store.set_vendor_registration(self.app_id, self.device_id, vendor, token)
        except StoreUnavailable as exc:
            self._store_failed("hello", exc, fatal=True)
            return False
        return True

    async def _read(self) -> None:
        while not self._conn.closing:
            try:
                payload = await self._transport.receive()
            except ProtocolError as exc:
                if not self._conn.closing:
                    self._answer(self._conn.reject(exc))
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.lost("connection lost", expected=True)
                return
            if payload is None or self._conn.closing:  # closing meanwhile: no more is read
                return
            self._last = trio.current_time()
            event = self._conn.receive(payload)
            if isinstance(event, Rejection):
                self._answer(event)
                continue
            try:
                await self._handle(event)
            except StoreUnavailable as exc:  # not recorded (a full disk): the device may retry
                self._store_failed(event.T, exc)

    async def _handle(self, frame: Frame) -> None:
        hub = self._context.hub
        if isinstance(frame, Ack):
            if self._acks is None:
                rate, failed = self._context.settings.ack_rate, self._store_failed
                self._acks = AckFlow(hub, self.app_id, self.device_id, rate=rate, on_failed=failed)
            await self._acks.receive(frame.ids)
        elif isinstance(frame, Ping):
            self.send(Pong())
        elif isinstance(frame, Bind):
            if not await bind_allowed(hub, self.app_id, self.device_id, frame):
                self._answer(self._conn.error(ErrorCode.BAD_SIGNATURE, "bind signature mismatch"))
                return
            await self._feed.bind(frame.user)
        elif isinstance(frame, Vendor):
            problem = registration_problem(frame.vendor, frame.token)
            if problem is not None:
                self._answer(self._conn.error(ErrorCode.BAD_VENDOR, f"{problem[0]}: {problem[1]}"))
                return
            await hub.store.set_vendor_registration(
                self.app_id, self.device_id, frame.vendor, frame.token
            )
            self.send(VendorOk())
        else:  # Unbind: the only other frame the state machine accepts when open
            await hub.unbind(self.app_id, self.device_id)
            self.send(Unbound())

    # --- what the hub tells (hub.Connection): never awaits ------------------------------

    def deliver(self, message: Message) -> None:
        if not self._conn.closing and self._feed.live(message) is not None:
            self.send(message)

    def drop(self, message_id: str) -> None:
        self._feed.drop(message_id)

    def rebound(self, user_id: str | None, upto_seq: int | None) -> None:
        self._feed.rebound(user_id, upto_seq, self._context.settings.backlog_page)

    def close(self, reason: ByeReason) -> None:
        bye = Bye(reason=reason)
        code = self._conn.close(bye)
        if code is not None:
            # event=replaced, event=idle_timeout, event=shutdown, event=slow_consumer
            log.info("event=%s app=%s device=%s", reason, self.app_id, self.device_id)
            self._outbox.close(bye, code, discard=reason is ByeReason.SLOW_CONSUMER)

    def statistics(self) -> SessionStatistics:
        acks = 0 if self._acks is None else self._acks.in_flight
        outbox = self._outbox.statistics()
        return SessionStatistics(self._conn.state, outbox, self.delivered, acks)

    # --- what the outbox, the feed and the idle check tell -------------------------------

    @property
    def closing(self) -> bool:
        return self._conn.closing

    def written(self, message_ids: Sequence[str]) -> None:
        self.delivered += len(message_ids)
        self._context.hub.sent_nowait(self.app_id, self.device_id, message_ids)

    def lost(self, why: str, *, expected: bool) -> None:
        level = logging.INFO if expected else logging.WARNING
        log.log(level, "event=session_aborted device=%s reason=%r", self.device_id, why)
        self._conn.closed()  # nothing more is delivered, read or written
        self._outbox.done()
        self._scope.cancel()

    def finished(self) -> None:
        self._scope.cancel()

    def drained(self) -> None:
        self._feed.drained()

    def page_failed(self, error: Exception) -> None:
        if isinstance(error, StoreUnavailable):
            self._store_failed("page", error, fatal=True)  # the device retries later for the rest
        else:
            log.error("event=page_read_failed device=%s error=%r", self.device_id, error)
            self.lost("page read failed", expected=False)

    def idle(self, now: float) -> bool:
        return now - self._last >= self._context.settings.idle_timeout and not self.closing

    def close_idle(self) -> None:
        self.close(ByeReason.IDLE_TIMEOUT)

    # --- queueing -------------------------------------------------------------------------

    def send(self, item: Frame | Message) -> None:
        """Queue a frame; past the outbox limit the device is a slow consumer."""
        if self._outbox.put(item) or self._conn.closing:
            return
        # A slow consumer: what is queued is dropped (its messages stay in the store).
        if self._outbox.state is Writing.DRAINING:
            # A write is stuck (its socket is full): a bye would wait behind it.
            self.lost("outbox full (slow consumer)", expected=False)
        else:
            self.close(ByeReason.SLOW_CONSUMER)

    def _answer(self, rejection: Rejection) -> None:
        """Send an error frame: a reply, or the last frame before the close."""
        code = rejection.error.code
        log.info("event=protocol_error app=%s device=%s code=%s", self.app_id, self.device_id, code)
        if rejection.close_code is None:
            self.send(rejection.error)
        else:
            self._outbox.close(rejection.error, rejection.close_code)

    def _store_failed(self, what: str, exc: StoreUnavailable, *, fatal: bool = False) -> None:
        if self._conn.closing:
            return  # e.g. an ack's commit failed after the close was queued
        log.warning(
            "event=store_unavailable app=%s device=%s frame=%s error=%r",
            *(self.app_id, self.device_id, what, str(exc)[:200]),
        )
        code, message = ErrorCode.STORE_UNAVAILABLE, STORE_MESSAGE
        self._answer(self._conn.fail(code, message) if fatal else self._conn.error(code, message))

"""One device connection's life: hello, welcome, reader, writer, close.

The session owns one nursery with a writer task; the reader runs in the
handler task itself. Fan-out never awaits a device: `deliver()` appends to a
bounded outbox, and a device whose outbox is full is disconnected (its
messages stay queued in the store, status 0). Only the writer calls the
transport's `send`, always under a timeout, so a peer that stops reading
cannot hold the gateway hostage.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import trio

from gateway.clock import Clock
from gateway.hub import Hub
from gateway.ids import new_id
from gateway.limits import CLOSE_TRY_AGAIN_LATER, STORE_UNAVAILABLE
from gateway.settings import Settings
from gateway.store import StoreUnavailable
from gateway.transports.base import CLOSE_GOING_AWAY, CLOSE_NORMAL, Transport
from gateway.transports.ws import WebSocketClosed, close_code_for
from protocol import (
    PLATFORMS,
    PROTOCOL_VERSION,
    Ack,
    Bind,
    Bound,
    Bye,
    Error,
    Frame,
    Hello,
    Ping,
    Pong,
    ProtocolError,
    Push,
    Unbind,
    Unbound,
    Welcome,
    decode,
    encode,
    is_valid_id,
    verify_bind_signature,
    verify_device_token,
)
from protocol import errors as E
from protocol.frames import BYE_IDLE_TIMEOUT, BYE_REPLACED, BYE_SHUTDOWN

log = logging.getLogger("pushgate.session")

CLOSE_TIMEOUT = 5.0
WRITE_BATCH = 256
HELD_LIMIT = 4096
_STORE_MESSAGE = "the gateway cannot record this now (store unavailable); retry later"
SENT_LIMIT = 4096  # written push ids awaiting their sent_at flush; beyond it marks are lost
DROPPED_LIMIT = 1024  # revoked ids remembered so a late copy is never written


@dataclass(slots=True, frozen=True)
class _Close:
    frame: Frame | None
    code: int


class Session:
    def __init__(self, transport: Transport, hub: Hub, settings: Settings, clock: Clock) -> None:
        self.transport = transport
        self.hub = hub
        self.settings = settings
        self.clock = clock
        self.session_id = new_id(clock.now_ms())
        self.app_id = ""
        self.device_id = ""
        self.platform = ""
        self.user_id: str | None = None
        self._secret = ""
        self._outbox: deque[Frame | _Close] = deque()
        self._wakeup = trio.Event()
        self._closing = False
        self._scope = trio.CancelScope()
        self._held: list[Push] | None = None  # not None while the backlog is read
        # The newest backlog ids: a message committed just before the backlog
        # was read may be routed only after end_replay(); it is queued already.
        self._replayed: set[str] = set()
        self.delivered = 0
        self._sent: list[str] = []  # written push ids, flushed to the store by _flush_sent
        self._sent_wakeup = trio.Event()
        self._dropped: dict[str, None] = {}  # revoked message ids (insertion-ordered set)

    # --- called by the hub (never await) --------------------------------------

    def deliver(self, push: Push) -> bool:
        """Queue a push for this device; False if the session can take no more."""
        if self._closing:
            return False
        if self._held is not None:
            if len(self._held) >= HELD_LIMIT:
                self._abort("held buffer full during replay")
                return False
            self._held.append(push)
            return True
        if push.id in self._replayed:
            self._replayed.discard(push.id)
            return True
        return self._put(push)

    def begin_replay(self) -> None:
        self._held = []

    def drop(self, message_id: str) -> int:
        """A revoked message: remove its queued copies; a copy queued later is skipped.

        (A backlog or a bind read before the revocation committed may still hand
        the session a copy: the writer skips ids remembered here.)
        """
        self._dropped[message_id] = None
        if len(self._dropped) > DROPPED_LIMIT:
            del self._dropped[next(iter(self._dropped))]
        removed = 0
        if self._held:
            kept_held = [p for p in self._held if p.id != message_id]
            removed += len(self._held) - len(kept_held)
            self._held[:] = kept_held
        kept = [f for f in self._outbox if not (isinstance(f, Push) and f.id == message_id)]
        if len(kept) != len(self._outbox):
            removed += len(self._outbox) - len(kept)
            self._outbox.clear()  # in place: the writer holds this deque
            self._outbox.extend(kept)
        return removed

    def end_replay(self, backlog: list[Push]) -> None:
        held, self._held = self._held or [], None
        seen = {p.id for p in backlog}
        self._replayed = {p.id for p in backlog[-HELD_LIMIT:]}
        for push in backlog:
            if not self._put(push):
                return
        for push in held:
            if push.id not in seen and not self._put(push):
                return

    def replaced(self) -> None:
        log.info("event=session_replaced app=%s device=%s", self.app_id, self.device_id)
        self.close(Bye(reason=BYE_REPLACED), CLOSE_NORMAL)

    def shutdown(self) -> None:
        self.close(Bye(reason=BYE_SHUTDOWN), CLOSE_GOING_AWAY)

    def close(self, frame: Frame | None, code: int) -> None:
        """Send `frame` (bye or error) after what is queued, then close."""
        if self._closing:
            return
        self._closing = True
        self._outbox.append(_Close(frame, code))
        self._wakeup.set()

    # --- internals ----------------------------------------------------------------

    def _put(self, frame: Frame) -> bool:
        if len(self._outbox) >= self.settings.outbox_limit:
            self._abort("outbox full (slow consumer)")
            return False
        self._outbox.append(frame)
        self._wakeup.set()
        return True

    def _abort(self, why: str, *, expected: bool = False) -> None:
        log.log(
            logging.INFO if expected else logging.WARNING,
            "event=session_aborted app=%s device=%s reason=%r",
            self.app_id,
            self.device_id,
            why,
        )
        self._closing = True
        self._scope.cancel()

    async def run(self) -> None:
        try:
            with self._scope:
                if await self._hello():
                    await self._serve()
        finally:
            if self.device_id:
                self.hub.detach(self)
                with trio.move_on_after(CLOSE_TIMEOUT) as cs:
                    cs.shield = True
                    try:
                        if self._sent:
                            await self.hub.mark_sent(self.app_id, self.device_id, self._sent)
                        await self.hub.store.device_offline(self.app_id, self.device_id)
                    except Exception:
                        log.exception("event=device_offline_failed device=%s", self.device_id)
                log.info(
                    "event=device_offline app=%s device=%s delivered=%d",
                    self.app_id,
                    self.device_id,
                    self.delivered,
                )
            await self.transport.aclose_forcefully()

    async def _fail_before_welcome(self, code: str, message: str) -> None:
        log.info("event=hello_rejected peer=%s code=%s", self.transport.peer, code)
        with trio.move_on_after(CLOSE_TIMEOUT):
            try:
                await self.transport.send([encode(Error(code=code, message=message))])
                await self.transport.close(close_code_for(code))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _hello(self) -> bool:
        frame: Frame | None = None
        with trio.move_on_after(self.settings.hello_timeout):
            try:
                payload = await self.transport.receive()
                if payload is None:
                    return False
                frame = decode(payload, max_size=self.settings.max_frame_size)
            except ProtocolError as exc:
                await self._fail_before_welcome(exc.code, exc.message)
                return False
            except (trio.BrokenResourceError, trio.ClosedResourceError, WebSocketClosed):
                return False
        if frame is None:
            await self._fail_before_welcome(E.HELLO_TIMEOUT, "no hello within the hello timeout")
            return False
        if not isinstance(frame, Hello):
            await self._fail_before_welcome(E.HELLO_REQUIRED, "the first frame must be hello")
            return False
        problem = self._check_hello(frame)
        if problem is None:
            try:
                app = await self.hub.app(frame.app)
            except StoreUnavailable:
                await self._fail_before_welcome(STORE_UNAVAILABLE, _STORE_MESSAGE)
                return False
            if app is None or not verify_device_token(
                app.secret, frame.app, frame.device, frame.token
            ):
                problem = (E.AUTH_FAILED, "unknown app or bad token")
            else:
                self._secret = app.secret
        if problem is not None:
            await self._fail_before_welcome(*problem)
            return False
        self.app_id, self.device_id, self.platform = frame.app, frame.device, frame.platform
        return True

    @staticmethod
    def _check_hello(hello: Hello) -> tuple[str, str] | None:
        if hello.v != PROTOCOL_VERSION:
            return (
                E.BAD_HELLO,
                f"unsupported protocol version; this gateway speaks v={PROTOCOL_VERSION}",
            )
        if hello.platform not in PLATFORMS:
            return E.BAD_HELLO, "platform must be 'android' or 'ios'"
        if not is_valid_id(hello.app) or not is_valid_id(hello.device):
            return E.BAD_HELLO, "app and device must be IDs (1-128 chars, no spaces)"
        if not hello.token:
            return E.AUTH_FAILED, "missing token"
        return None

    async def _serve(self) -> None:
        log.info(
            "event=device_online app=%s device=%s platform=%s transport=%s peer=%s",
            self.app_id,
            self.device_id,
            self.platform,
            self.transport.name,
            self.transport.peer,
        )
        self._put(
            Welcome(
                session=self.session_id,
                heartbeat=self.settings.heartbeat,
                server_time=self.clock.now_ms(),
            )
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            nursery.start_soon(self._flush_sent)
            try:
                await self.hub.attach(self, self.app_id, self.device_id, self.platform)
            except StoreUnavailable as exc:
                self._store_failed("hello", exc)
                self.close(
                    Error(code=STORE_UNAVAILABLE, message=_STORE_MESSAGE), CLOSE_TRY_AGAIN_LATER
                )
                return
            await self._reader()
            if not self._closing:
                nursery.cancel_scope.cancel()  # the peer went away

    async def _reader(self) -> None:
        while True:
            payload: bytes | None = None
            with trio.move_on_after(self.settings.idle_timeout) as idle:
                try:
                    payload = await self.transport.receive()
                    if payload is None:
                        return
                    frame = decode(payload, max_size=self.settings.max_frame_size)
                except ProtocolError as exc:
                    self._protocol_error(exc)
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError, WebSocketClosed):
                    self._abort("connection lost", expected=True)
                    return
            if idle.cancelled_caught:
                log.info("event=idle_timeout app=%s device=%s", self.app_id, self.device_id)
                self.close(Bye(reason=BYE_IDLE_TIMEOUT), CLOSE_NORMAL)
                return
            if self._closing:
                return
            try:
                await self._handle(frame)
            except StoreUnavailable as exc:
                # Not recorded (a full disk): the device may retry; an unrecorded
                # ack only means the message is sent again on a later connection.
                self._store_failed(frame.T, exc)
                self._put(Error(code=STORE_UNAVAILABLE, message=_STORE_MESSAGE))
            if self._closing:
                return

    def _store_failed(self, what: str, exc: StoreUnavailable) -> None:
        log.warning(
            "event=store_unavailable app=%s device=%s frame=%s error=%r",
            self.app_id,
            self.device_id,
            what,
            str(exc)[:200],
        )

    def _protocol_error(self, exc: ProtocolError) -> None:
        log.info(
            "event=protocol_error app=%s device=%s code=%s", self.app_id, self.device_id, exc.code
        )
        self.close(Error(code=exc.code, message=exc.message), close_code_for(exc.code))

    async def _handle(self, frame: Frame) -> None:
        if isinstance(frame, Ack):
            if frame.ids:
                await self.hub.ack(self.app_id, self.device_id, frame.ids)
        elif isinstance(frame, Ping):
            self._put(Pong())
        elif isinstance(frame, Bind):
            await self._bind(frame)
        elif isinstance(frame, Unbind):
            await self.hub.unbind(self.app_id, self.device_id)
            self._put(Unbound())
        elif isinstance(frame, Hello):
            self._put(Error(code=E.BAD_HELLO, message="hello already done on this connection"))
        else:
            self._protocol_error(
                ProtocolError(E.UNKNOWN_FRAME_TYPE, f"a device may not send {frame.T!r}")
            )

    async def _bind(self, frame: Bind) -> None:
        if not verify_bind_signature(
            self._secret, self.app_id, self.device_id, frame.user, frame.sig
        ):
            self._put(Error(code=E.BAD_SIGNATURE, message="bind signature does not match"))
            return
        messages = await self.hub.bind(self.app_id, self.device_id, frame.user)
        if self._put(Bound(user=frame.user)):
            for message in messages:
                if not self._put(message.to_push()):
                    return

    async def _writer(self) -> None:
        transport = self.transport
        outbox = self._outbox
        while True:
            if not outbox:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            now = self.clock.now_ms()
            payloads: list[bytes] = []
            final: _Close | None = None
            pushes = 0
            sent_ids: list[str] = []
            while outbox and len(payloads) < WRITE_BATCH:
                item = outbox.popleft()
                if isinstance(item, _Close):
                    final = item
                    if item.frame is not None:
                        payloads.append(encode(item.frame))
                    break
                if isinstance(item, Push):
                    if item.expires <= now or item.id in self._dropped:
                        continue  # an expired or revoked message is never sent
                    pushes += 1
                    sent_ids.append(item.id)
                payloads.append(encode(item))
            if payloads:
                try:
                    with trio.fail_after(self.settings.send_timeout):
                        await transport.send(payloads)
                except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._abort("send failed or timed out")
                    return
                self.delivered += pushes
                self.hub.metrics.pushes_sent(pushes)
                self._note_sent(sent_ids)
            if final is not None:
                with trio.move_on_after(CLOSE_TIMEOUT):
                    try:
                        await transport.close(final.code)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                self._scope.cancel()
                return

    def _note_sent(self, message_ids: list[str]) -> None:
        """Queue written ids for the sent_at flush; bounded, never waits."""
        if not message_ids:
            return
        room = SENT_LIMIT - len(self._sent)
        if room < len(message_ids):
            log.warning(
                "event=sent_marks_dropped app=%s device=%s count=%d",
                self.app_id,
                self.device_id,
                len(message_ids) - max(room, 0),
            )
        self._sent.extend(message_ids[: max(room, 0)])
        self._sent_wakeup.set()

    async def _flush_sent(self) -> None:
        """One background task records sent_at in batches, off the writer's path."""
        while True:
            await self._sent_wakeup.wait()
            self._sent_wakeup = trio.Event()
            ids, self._sent = self._sent, []
            if ids:
                await self.hub.mark_sent(self.app_id, self.device_id, ids)

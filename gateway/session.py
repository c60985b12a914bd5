"""One device connection's life: hello, welcome, reader, writer, close.

The reader runs in the handler task itself. Fan-out never awaits a device:
`deliver()` appends to a bounded outbox, and a device whose outbox is full is
disconnected (its messages stay queued in the store, status 0).

Writing costs no task per connection: one flusher task per Trio run writes the
queued frames of every session that has some, once per scheduling round, with
non-blocking writes (so frames queued together leave in one write). Only when
a socket does not take everything does the session start a writer task of its
own, which awaits the rest under the send timeout (a peer that stops reading
cannot hold the gateway hostage), sends any close, and ends when the outbox is
empty. Flusher and writer task never write to one session at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Set
from dataclasses import dataclass
from typing import NoReturn

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
DROPPED_LIMIT = 1024  # revoked ids remembered so a late copy is never written


@dataclass(slots=True, frozen=True)
class _Close:
    frame: Frame | None
    code: int


_NO_IDS: frozenset[str] = frozenset()


class Session:
    # Slots: thousands of idle sessions, each without an instance dict.
    # (A new attribute must be named here too.)
    __slots__ = (
        "_catchup",
        "_closing",
        "_done",
        "_dropped",
        "_final",
        "_held",
        "_last",
        "_outbox",
        "_pending_ids",
        "_replayed",
        "_scheduled",
        "_scope",
        "_secret",
        "_writer_scope",
        "_writing",
        "app_id",
        "clock",
        "delivered",
        "device_id",
        "hub",
        "platform",
        "session_id",
        "settings",
        "transport",
        "user_id",
    )

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
        # A list, not a deque: an empty deque costs 600 bytes per idle session.
        self._outbox: list[Frame | _Close] = []
        self._writing = False  # a writer task owns the transport's writes
        self._writer_scope: trio.CancelScope | None = None  # that task's, while it runs
        self._scheduled = False  # waiting for the flusher
        self._pending_ids: list[str] = []  # pushes in bytes the writer task still flushes
        self._final: _Close | None = None  # the close the writer task does last
        self._done = False
        self._last = 0.0  # Trio time of the last frame received
        self._closing = False
        self._scope = trio.CancelScope()
        self._held: list[Push] | None = None  # not None while the backlog is read
        # The newest backlog ids: a message committed just before the backlog
        # was read may be routed only after end_replay(); it is queued already.
        self._replayed: Set[str] = _NO_IDS
        # Backlog frames (replay, bind catch-up) still queued: they are pulled
        # from the store, not pushed at us, so the outbox limit counts past them
        # (a backlog larger than the limit must not starve the device).
        self._catchup = 0
        self.delivered = 0
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
            assert isinstance(self._replayed, set)
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
            self._outbox[:] = kept  # in place: the writer holds this list
        return removed

    def end_replay(self, backlog: list[Push]) -> None:
        held, self._held = self._held or [], None
        seen = {p.id for p in backlog}
        self._replayed = {p.id for p in backlog[-HELD_LIMIT:]} if backlog else _NO_IDS
        self._catchup += len(backlog) + len(held)
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
        self._kick()

    # --- internals ----------------------------------------------------------------

    def _put(self, frame: Frame) -> bool:
        if len(self._outbox) >= self.settings.outbox_limit + self._catchup:
            self._abort("outbox full (slow consumer)")
            return False
        self._outbox.append(frame)
        self._kick()
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
            self._done = True
            _flusher().unwatch(self)
            if self._writer_scope is not None:
                self._writer_scope.cancel()
            if self.device_id:
                self.hub.detach(self)
                with trio.move_on_after(CLOSE_TIMEOUT) as cs:
                    cs.shield = True
                    try:
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
        self._last = trio.current_time()
        _flusher().watch(self)
        try:
            await self.hub.attach(self, self.app_id, self.device_id, self.platform)
        except StoreUnavailable as exc:
            self._store_failed("hello", exc)
            self.close(Error(code=STORE_UNAVAILABLE, message=_STORE_MESSAGE), CLOSE_TRY_AGAIN_LATER)
            await self._write_out()
            return
        await self._reader()
        if self._closing:
            await self._write_out()  # the close queued (error, bye): it may be ours to send

    async def _reader(self) -> None:
        # No timeout here: the flusher's sweep closes sessions idle too long
        # (a cancel scope per session, or per frame, costs more than the frame).
        while True:
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
            self._last = trio.current_time()
            if self._closing:
                return
            try:
                if not self._handle_now(frame):
                    await self._handle(frame)
            except StoreUnavailable as exc:
                # Not recorded (a full disk): the device may retry; an unrecorded
                # ack only means the message is sent again on a later connection.
                self._store_failed(frame.T, exc)
                self._put(Error(code=STORE_UNAVAILABLE, message=_STORE_MESSAGE))
            if self._closing:
                return

    def idle_for(self, now: float) -> bool:
        """No frame for the idle timeout (2 x heartbeat) by `now` (Trio time)."""
        return now - self._last >= self.settings.idle_timeout and not self._closing

    def idle_timeout(self) -> None:
        log.info("event=idle_timeout app=%s device=%s", self.app_id, self.device_id)
        self.close(Bye(reason=BYE_IDLE_TIMEOUT), CLOSE_NORMAL)

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

    def _handle_now(self, frame: Frame) -> bool:
        """Handle `frame` if that needs no waiting; False: `_handle` it."""
        if isinstance(frame, Ack):
            # Recorded in the next group commit; the device gets no reply.
            return not frame.ids or self.hub.ack_nowait(self.app_id, self.device_id, frame.ids)
        if isinstance(frame, Bind | Unbind):
            return False  # they wait for the store
        if isinstance(frame, Ping):
            self._put(Pong())
        elif isinstance(frame, Hello):
            self._put(Error(code=E.BAD_HELLO, message="hello already done on this connection"))
        else:
            self._protocol_error(
                ProtocolError(E.UNKNOWN_FRAME_TYPE, f"a device may not send {frame.T!r}")
            )
        return True

    async def _handle(self, frame: Frame) -> None:
        if isinstance(frame, Ack):
            if frame.ids:
                await self.hub.ack_soon(self.app_id, self.device_id, frame.ids)
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
        self._catchup += len(messages)
        if self._put(Bound(user=frame.user)):
            for message in messages:
                if not self._put(message.to_push()):
                    return

    # --- writing ----------------------------------------------------------------

    def _kick(self) -> None:
        """Frames were queued: the writer task writes them if one runs, else the flusher."""
        if not self._writing and not self._scheduled:
            self._scheduled = True
            _flusher().schedule(self)

    def _flush(self) -> None:
        """The flusher's turn: write what is queued now, without waiting."""
        self._scheduled = False
        if self._writing or self._done:
            return
        transport = self.transport
        try:
            while self._outbox:
                payloads, ids, final = self._take()
                if final is not None:
                    # A close is awaited: the writer task sends what is left, then it.
                    if payloads:
                        transport.write_nowait(transport.wire(payloads))
                    self._pending_ids, self._final = ids, final
                    self._start_writer()
                    return
                if not payloads:
                    continue
                if not transport.write_nowait(transport.wire(payloads)):
                    self._pending_ids = ids  # the socket is full: the rest needs waiting for
                    self._start_writer()
                    return
                self._written(ids)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._abort("connection lost while writing", expected=True)

    def _start_writer(self) -> None:
        """A task of its own to await the socket: in the flusher's nursery, no
        nursery per session; cancelled when the session ends."""
        self._writing = True
        self._writer_scope = trio.CancelScope()
        _flusher().start_writer(self._run_writer, self._writer_scope)

    async def _run_writer(self, scope: trio.CancelScope) -> None:
        try:
            with scope:
                await self._writer()
        except Exception:  # a bug here must not reach the flusher's nursery
            log.exception("event=writer_failed device=%s", self.device_id)
            self._abort("writer failed")
        finally:
            if self._writer_scope is scope:
                self._writer_scope = None

    async def _write_out(self) -> None:
        """Write what is queued (a close included) from this task, unless a writer runs;
        if one does, wait for it to end the session."""
        if not self._writing:
            self._writing = True
            await self._writer()
        else:
            await trio.sleep_forever()  # the writer task cancels our scope when done

    async def _writer(self) -> None:
        """Own the transport's writes until the outbox is empty (or the close is sent)."""
        transport = self.transport
        try:
            while True:
                try:
                    with trio.fail_after(self.settings.send_timeout):
                        await transport.flush()
                except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError):
                    self._abort("send failed or timed out")
                    return
                ids, self._pending_ids = self._pending_ids, []
                self._written(ids)
                if self._final is not None:
                    with trio.move_on_after(CLOSE_TIMEOUT):
                        try:
                            await transport.close(self._final.code)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass
                    self._scope.cancel()
                    return
                if not self._outbox:
                    return
                payloads, self._pending_ids, self._final = self._take()
                if payloads:
                    try:
                        transport.write_nowait(transport.wire(payloads))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        self._abort("connection lost while writing", expected=True)
                        return
        finally:
            self._writing = False

    def _take(self) -> tuple[list[bytes], list[str], _Close | None]:
        """Encode up to WRITE_BATCH queued frames: (payloads, push ids, the close if reached)."""
        outbox = self._outbox
        queued = len(outbox)
        now = self.clock.now_ms()
        payloads: list[bytes] = []
        ids: list[str] = []
        final: _Close | None = None
        taken = 0
        for item in outbox:
            if len(payloads) >= WRITE_BATCH:
                break
            taken += 1
            if isinstance(item, _Close):
                final = item
                if item.frame is not None:
                    payloads.append(encode(item.frame))
                break
            if isinstance(item, Push):
                if item.expires <= now or item.id in self._dropped:
                    continue  # an expired or revoked message is never sent
                ids.append(item.id)
                payloads.append(_encode_push(item))
            else:
                payloads.append(encode(item))
        del outbox[:taken]
        if self._catchup:
            self._catchup = max(0, self._catchup - (queued - len(outbox)))
        return payloads, ids, final

    def _written(self, ids: list[str]) -> None:
        """These pushes are on the wire: count them, and record sent_at (not awaited)."""
        if ids:
            self.delivered += len(ids)
            self.hub.metrics.pushes_sent(len(ids))
            self.hub.sent_soon(self.app_id, self.device_id, ids)


# One Push goes to every device of a user or a broadcast: consecutive sessions
# writing the same object reuse its encoding.
_last_push: Push | None = None
_last_encoded = b""


def _encode_push(push: Push) -> bytes:
    global _last_push, _last_encoded
    if push is not _last_push:
        _last_encoded = encode(push)
        _last_push = push
    return _last_encoded


class _Flusher:
    """Writes the queued frames of every session that has some, from one task.

    Sessions ask for a turn (`schedule`); the flusher runs once other tasks
    have queued what they will this round, and each session writes all its
    frames in one non-blocking write. A task per session woken per message
    would cost a task switch per message instead.
    """

    __slots__ = ("_live", "_nursery", "_parked", "_ready", "_sweeping", "_task")

    def __init__(self) -> None:
        self._ready: list[Session] = []
        self._task: trio.lowlevel.Task | None = None
        self._parked = False
        self._nursery: trio.Nursery | None = None
        self._live: set[Session] = set()  # sessions past hello, for the idle sweep
        self._sweeping = False

    def watch(self, session: Session) -> None:
        self._live.add(session)
        self._start_sweep()

    def unwatch(self, session: Session) -> None:
        self._live.discard(session)

    def _start_sweep(self) -> None:
        if not self._sweeping and self._live and self._nursery is not None:
            self._sweeping = True
            self._nursery.start_soon(self._sweep)

    async def _sweep(self) -> None:
        """Close sessions that received nothing for their idle timeout.

        One pass every eighth of the shortest idle timeout (at most 5 s), so a
        silent device gets `bye idle_timeout` between 1 and 1.125 idle
        timeouts after its last frame; ends when no session is left.
        """
        try:
            while self._live:
                period = min(5.0, min(s.settings.idle_timeout for s in self._live) / 8)
                await trio.sleep(period)
                now = trio.current_time()
                for session in [s for s in self._live if s.idle_for(now)]:
                    session.idle_timeout()
        finally:
            self._sweeping = False

    def start_writer(
        self,
        writer: Callable[[trio.CancelScope], Awaitable[None]],
        scope: trio.CancelScope,
    ) -> None:
        """Run a session's writer task (it never raises; see Session._run_writer)."""
        assert self._nursery is not None
        self._nursery.start_soon(writer, scope)

    def schedule(self, session: Session) -> None:
        self._ready.append(session)
        if self._parked:
            self._parked = False
            assert self._task is not None
            trio.lowlevel.reschedule(self._task)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._start_sweep()
            await self._loop()

    async def _loop(self) -> None:
        self._task = trio.lowlevel.current_task()
        while True:
            if self._ready:
                await trio.lowlevel.checkpoint()
            else:
                self._parked = True
                await trio.lowlevel.wait_task_rescheduled(self._abort)
            ready, self._ready = self._ready, []
            for session in ready:
                try:
                    session._flush()
                except Exception:  # a bug here must not end the flusher for everyone
                    log.exception("event=flush_failed device=%s", session.device_id)
                    session._abort("flush failed")

    def _abort(self, raise_cancel: Callable[[], NoReturn]) -> trio.lowlevel.Abort:
        self._parked = False
        return trio.lowlevel.Abort.SUCCEEDED


_FLUSHER: trio.lowlevel.RunVar[_Flusher] = trio.lowlevel.RunVar("pushgate_flusher")


def _flusher() -> _Flusher:
    try:
        return _FLUSHER.get()
    except LookupError:
        flusher = _Flusher()
        _FLUSHER.set(flusher)
        trio.lowlevel.spawn_system_task(flusher.run, name="pushgate-flusher")
        return flusher

"""Who is online where, and the one place that moves delivery state.

The hub maps (app, device) to the live session, fans new messages out to
sessions without ever awaiting a device, replays backlogs, and turns acks,
binds and unbinds into store calls. State lives in the store; the hub only
caches who is connected and the apps it has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import trio

from gateway.metrics import Metrics
from gateway.store import App, Message, NewMessage, PushOutcome, Store, StoreUnavailable
from protocol.status_codes import Status

if TYPE_CHECKING:
    from gateway.session import Session

log = logging.getLogger("pushgate.hub")

WAITING = int(Status.WAITING_FOR_VERIFY)


class Hub:
    def __init__(self, store: Store, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self._sessions: dict[tuple[str, str], Session] = {}
        self._apps: dict[str, App] = {}
        self._shutting_down = False
        self.drained = trio.Event()  # set once shutdown() and every session gone

    # --- apps -------------------------------------------------------------------

    def remember_app(self, app: App) -> None:
        self._apps[app.app_id] = app

    async def app(self, app_id: str) -> App | None:
        """An app by ID; apps created by the CLI while we run are found in the store."""
        app = self._apps.get(app_id)
        if app is None:
            app = await self.store.get_app(app_id)
            if app is not None:
                self._apps[app_id] = app
        return app

    # --- sessions ---------------------------------------------------------------

    @property
    def online_count(self) -> int:
        return len(self._sessions)

    def session_for(self, app_id: str, device_id: str) -> Session | None:
        return self._sessions.get((app_id, device_id))

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    async def attach(self, session: Session, app_id: str, device_id: str, platform: str) -> None:
        """Make `session` the device's live connection, then replay its backlog.

        Messages routed while the backlog is being read are held by the
        session and sent after it, so nothing is missed and order is kept.
        """
        key = (app_id, device_id)
        old = self._sessions.get(key)
        self._sessions[key] = session
        if old is not None:
            old.replaced()
        session.begin_replay()
        user_id, backlog = await self.store.device_online(app_id, device_id, platform)
        session.user_id = user_id
        session.end_replay([m.to_push() for m in backlog])

    def detach(self, session: Session) -> None:
        key = (session.app_id, session.device_id)
        if self._sessions.get(key) is session:
            del self._sessions[key]
        if self._shutting_down and not self._sessions:
            self.drained.set()

    # --- delivery ---------------------------------------------------------------

    def route(self, app_id: str, outcomes: Iterable[PushOutcome]) -> int:
        """Hand freshly stored messages to the sessions online now; never waits."""
        sent = 0
        for outcome in outcomes:
            self.metrics.push_accepted(outcome)
            if not outcome.device_ids:
                continue
            push = outcome.message.to_push()
            for device_id in outcome.device_ids:
                session = self._sessions.get((app_id, device_id))
                if session is not None and session.deliver(push):
                    sent += 1
        return sent

    # --- state changes the API asks for: the store commits, then the hub routes ---

    async def push(self, app: App, items: Sequence[NewMessage]) -> list[PushOutcome]:
        """Store messages (one transaction, all or nothing), then send them to the
        devices online now; a broadcast opens a delivery per device online now."""
        outcomes = await self.store.insert_messages(app, items)
        self.route(app.app_id, outcomes)
        for outcome in outcomes:
            message = outcome.message
            if message.push_type == "broadcast" and message.status != WAITING:
                # Idempotent: a repeated broadcast opens only what is not open yet.
                await self.open_broadcast(app.app_id, message)
        return outcomes

    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None:
        """Approve (the message enters the normal flow now) or reject a waiting message."""
        outcome = await self.store.verify(app_id, message_id, approve)
        if outcome is not None and approve:
            await self.release(app_id, outcome)
        return outcome

    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
        """Revoke a message: its undelivered copies, queued ones included, are never sent."""
        revoked = await self.store.revoke(app_id, message_id)
        if revoked is not None:
            message, stopped = revoked
            self.drop(app_id, message.message_id, stopped)
        return revoked

    def is_online(self, app_id: str, device_id: str) -> bool:
        return (app_id, device_id) in self._sessions

    def online_in(self, app_id: str) -> int:
        """Devices of this app online now."""
        return sum(1 for a, _ in self._sessions if a == app_id)

    def _send_to(self, app_id: str, device_id: str, messages: Sequence[Message]) -> None:
        session = self._sessions.get((app_id, device_id))
        if session is not None:
            for message in messages:
                if not session.deliver(message.to_push()):
                    break

    async def open_broadcast(self, app_id: str, message: Message) -> int:
        """Open a broadcast's deliveries for the app's devices online now, and send them.

        Devices that connect later get it in their backlog (device_online).
        The store opens a device's delivery once, and says which this call
        opened, so each device gets its copy once whoever opened it.
        """
        online = [(s.device_id, s.platform) for (a, _), s in self._sessions.items() if a == app_id]
        if not online:
            return 0
        opened = await self.store.open_broadcast(app_id, message.seq, online)
        push = message.to_push()
        for device_id in opened:
            session = self._sessions.get((app_id, device_id))
            if session is not None:
                session.deliver(push)
        return len(opened)

    async def release(self, app_id: str, outcome: PushOutcome) -> None:
        """An approved message enters the normal flow: sent to its devices online now."""
        push = outcome.message.to_push()
        for device_id in outcome.device_ids:
            session = self._sessions.get((app_id, device_id))
            if session is not None:
                session.deliver(push)
        if outcome.message.push_type == "broadcast":
            await self.open_broadcast(app_id, outcome.message)

    def drop(self, app_id: str, message_id: str, device_ids: Iterable[str]) -> None:
        """A revoked message: live sessions of these devices never write their copy."""
        for device_id in device_ids:
            session = self._sessions.get((app_id, device_id))
            if session is not None:
                session.drop(message_id)

    async def mark_sent(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        """Record pushes a session wrote to its socket (sent_at); telemetry, never raises."""
        try:
            await self.store.mark_sent(app_id, device_id, message_ids)
        except StoreUnavailable as exc:
            log.warning("event=mark_sent_failed device=%s error=%r", device_id, str(exc))

    def ack_nowait(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> bool:
        """A device's ack, recorded in the next group commit; nobody waits for it.

        False if the store has too many unrecorded acks: then `ack_soon`. An
        ack the store cannot record only means the message is sent again.
        """
        return self.store.defer_ack(app_id, device_id, message_ids, self.metrics.acked)

    async def ack_soon(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        """`ack_nowait`, first waiting for room if the store is behind (backpressure)."""
        while not self.ack_nowait(app_id, device_id, message_ids):
            await self.store.ack_room()

    def sent_soon(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        """Pushes a session wrote to its socket: sent_at in the next group commit."""
        try:
            kept = self.store.defer_mark_sent(app_id, device_id, message_ids)
        except StoreUnavailable:
            kept = False  # the store is closing: telemetry only
        if not kept:
            log.warning("event=sent_marks_dropped device=%s count=%d", device_id, len(message_ids))

    async def ack(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> int:
        acked = await self.store.ack(app_id, device_id, message_ids)
        self.metrics.acked(message_ids, len(acked))
        return len(acked)

    async def bind(self, app_id: str, device_id: str, user_id: str) -> list[Message]:
        """Bind and return the user's waiting messages for the device (not yet sent)."""
        messages = await self.store.bind(app_id, device_id, user_id)
        session = self._sessions.get((app_id, device_id))
        if session is not None:
            session.user_id = user_id
        return messages

    async def bind_and_deliver(self, app_id: str, device_id: str, user_id: str) -> None:
        """The API's bind: the device, if online, gets the user's waiting messages."""
        messages = await self.bind(app_id, device_id, user_id)
        self._send_to(app_id, device_id, messages)

    async def unbind(self, app_id: str, device_id: str) -> str | None:
        old = await self.store.unbind(app_id, device_id)
        session = self._sessions.get((app_id, device_id))
        if session is not None:
            session.user_id = None
        return old

    def shutdown(self) -> None:
        """Tell every device the gateway is going away."""
        self._shutting_down = True
        if not self._sessions:
            self.drained.set()
        for session in list(self._sessions.values()):
            session.shutdown()

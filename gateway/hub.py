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

from gateway.store import App, Message, PushOutcome, Store

if TYPE_CHECKING:
    from gateway.session import Session

log = logging.getLogger("pushgate.hub")


class Hub:
    def __init__(self, store: Store) -> None:
        self.store = store
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
            if not outcome.device_ids:
                continue
            push = outcome.message.to_push()
            for device_id in outcome.device_ids:
                session = self._sessions.get((app_id, device_id))
                if session is not None and session.deliver(push):
                    sent += 1
        return sent

    def _send_to(self, app_id: str, device_id: str, messages: Sequence[Message]) -> None:
        session = self._sessions.get((app_id, device_id))
        if session is not None:
            for message in messages:
                if not session.deliver(message.to_push()):
                    break

    async def ack(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> int:
        return len(await self.store.ack(app_id, device_id, message_ids))

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

"""Who is online where, and the one place that changes delivery state.

Every state change goes one way: the caller (the API, a device's session)
asks the hub, the hub has the store commit it, then tells the connections
online now what changed for them, never awaiting a device. Nothing else
crosses: a connection is seen only through `Connection` below, and the
store is reached only through the hub. State lives in the store; the hub
caches who is connected here and the apps it has seen (so routing surface
stays behind methods a multi-node hub can implement as well).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import trio

from gateway.metrics import Metrics
from gateway.store import App, Message, NewMessage, PushOutcome, Store, StoreUnavailable
from protocol import ByeReason
from protocol.status_codes import Status

log = logging.getLogger("pushgate.hub")

WAITING = int(Status.WAITING_FOR_VERIFY)
OFFLINE_TIMEOUT = 5.0  # recording a device offline at disconnect, at most
AckDone = Callable[[Sequence[str], int, BaseException | None], None]


class Connection(Protocol):
    """What the hub needs of a live device connection (gateway.session.Session)."""

    @property
    def app_id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def platform(self) -> str: ...

    def deliver(self, message: Message) -> None:
        """A message for this device, committed just now; never awaits."""

    def drop(self, message_id: str) -> None:
        """This message was revoked: never write it."""

    def rebound(self, user_id: str | None, upto_seq: int | None) -> None:
        """The device's binding changed (committed); catch up to `upto_seq` if given."""

    def close(self, reason: ByeReason) -> None:
        """Say `bye` with this reason, then close."""


class Peers(Protocol):
    """The other nodes of a gateway made of many (gateway.cluster.Cluster); hints only:
    the store already holds every change they are told about."""

    async def claim(self, app_id: str, device_id: str) -> tuple[int, bool]:
        """The device's next fencing epoch (committed) and whether its route is ours now."""

    async def release(self, app_id: str, device_id: str, epoch: int) -> None:
        """The connection of this epoch ended: its route goes, unless a newer one holds it."""

    def deliver(self, app_id: str, message: Message, device_ids: list[str]) -> None:
        """Hint the nodes holding these devices (not connected here); never awaits."""

    def broadcast(self, app_id: str, message: Message) -> None: ...
    def revoke(self, app_id: str, message_id: str) -> None: ...
    def rebound(self, app_id: str, device_id: str, user_id: str | None) -> None: ...


class Hub:
    def __init__(self, store: Store, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics or Metrics()
        self._connections: dict[tuple[str, str], Connection] = {}
        # Many nodes: the other nodes, the epoch of each live connection here, and
        # the newest kick that came while a connection's claim was under way.
        self.peers: Peers | None = None
        self._epochs: dict[tuple[str, str], int] = {}
        self._kicks: dict[tuple[str, str], int] = {}
        # The user each connection here was last told it is bound to (a fresh 1-tuple
        # per change, so a sweep can see whether it changed since it looked); absent
        # while the hello's read is under way.
        self._users: dict[tuple[str, str], tuple[str | None]] = {}
        self._apps: dict[str, App] = {}
        self._shutting_down = False
        self.drained = trio.Event()  # set once shutdown() and every connection gone

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

    def forget_app(self, app_id: str) -> None:
        """The app changed on another node: read it again on its next use."""
        self._apps.pop(app_id, None)

    # --- connections ------------------------------------------------------------

    @property
    def online_count(self) -> int:
        return len(self._connections)

    def is_online(self, app_id: str, device_id: str) -> bool:
        return (app_id, device_id) in self._connections

    def online_in(self, app_id: str) -> int:
        """Devices of this app online now."""
        return sum(1 for a, _ in self._connections if a == app_id)

    async def attach(self, conn: Connection, *, page_size: int) -> tuple[str | None, list[Message]]:
        """Make `conn` the device's live connection (an older one gets `bye replaced`),
        record it online; returns its user and the first page of its backlog."""
        key = (conn.app_id, conn.device_id)
        old = self._connections.get(key)
        self._connections[key] = conn
        self._users.pop(key, None)
        if old is not None:
            old.close(ByeReason.REPLACED)
        if self.peers is not None:
            await self._claim(conn)
        user, page = await self.store.device_online(
            conn.app_id, conn.device_id, conn.platform, page_size=page_size
        )
        if self._connections.get(key) is conn:
            self._users.setdefault(key, (user,))  # else a (un)bind came since, and is newer
        return user, page

    async def _claim(self, conn: Connection) -> None:
        """Take the device's next epoch and its route; a newer connection elsewhere wins."""
        assert self.peers is not None
        key = (conn.app_id, conn.device_id)
        try:
            epoch, won = await self.peers.claim(conn.app_id, conn.device_id)
        finally:
            kicked = self._kicks.pop(key, 0)
        if self._connections.get(key) is not conn:
            return  # replaced here meanwhile: the newer connection holds the route
        self._epochs[key] = epoch
        if not won or kicked > epoch:
            conn.close(ByeReason.REPLACED)

    def kick(self, app_id: str, device_id: str, epoch: int) -> None:
        """Another node holds the device at `epoch`: an older connection here goes."""
        key = (app_id, device_id)
        conn = self._connections.get(key)
        if conn is None:
            return
        held = self._epochs.get(key)
        if held is None:
            self._kicks[key] = max(epoch, self._kicks.get(key, 0))  # its claim is under way
        elif held < epoch:
            conn.close(ByeReason.REPLACED)

    async def detach(self, conn: Connection) -> None:
        """The connection ended: forget it, and record when the device was last seen."""
        key = (conn.app_id, conn.device_id)
        epoch: int | None = None
        if self._connections.get(key) is conn:
            del self._connections[key]
            self._users.pop(key, None)
            epoch = self._epochs.pop(key, None)
        if self._shutting_down and not self._connections:
            self.drained.set()
        with trio.move_on_after(OFFLINE_TIMEOUT) as scope:
            scope.shield = True
            if epoch is not None and self.peers is not None:
                await self.peers.release(conn.app_id, conn.device_id, epoch)
            try:
                await self.store.device_offline(conn.app_id, conn.device_id)
            except StoreUnavailable as exc:
                log.warning("event=device_offline_failed device=%s error=%r", key[1], str(exc))

    def connection(self, app_id: str, device_id: str) -> Connection | None:
        """The device's live connection here, if any."""
        return self._connections.get((app_id, device_id))

    def local_devices(self) -> list[tuple[str, str]]:
        """(app, device) of every connection here."""
        return list(self._connections)

    def online_counts(self) -> dict[str, int]:
        """App → devices online here."""
        counts: dict[str, int] = {}
        for app_id, _ in self._connections:
            counts[app_id] = counts.get(app_id, 0) + 1
        return counts

    async def page(
        self,
        conn: Connection,
        *,
        after_seq: int,
        limit: int,
        user_id: str | None = None,
        upto_seq: int | None = None,
    ) -> tuple[str | None, list[Message]]:
        """The device's user now, and the next page of what it has to receive (backlog.py)."""
        return await self.store.pending_page(
            conn.app_id,
            conn.device_id,
            after_seq=after_seq,
            limit=limit,
            user_id=user_id,
            upto_seq=upto_seq,
        )

    def shutdown(self) -> None:
        """Tell every device the gateway is going away."""
        self._shutting_down = True
        if not self._connections:
            self.drained.set()
        for conn in list(self._connections.values()):
            conn.close(ByeReason.SHUTDOWN)

    # --- pushes, verification, revocation: the store commits, then the hub routes ---

    async def push(self, app: App, items: Sequence[NewMessage]) -> list[PushOutcome]:
        """Store messages (one transaction, all or nothing), then send them to the
        devices online now; a broadcast opens a delivery per device online now."""
        outcomes = await self.store.insert_messages(app, items)
        for outcome in outcomes:
            self.metrics.push_accepted(outcome)
            self._route(app.app_id, outcome.message, outcome.device_ids)
        for outcome in outcomes:
            message = outcome.message
            if message.push_type == "broadcast" and message.status != WAITING:
                # Idempotent: a repeated broadcast opens only what is not open yet.
                await self.open_broadcast(app.app_id, message)
                if self.peers is not None:
                    self.peers.broadcast(app.app_id, message)
        return outcomes

    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None:
        """Approve (the message enters the normal flow now) or reject a waiting message."""
        outcome = await self.store.verify(app_id, message_id, approve)
        if outcome is not None and approve:
            self._route(app_id, outcome.message, outcome.device_ids)
            if outcome.message.push_type == "broadcast":
                await self.open_broadcast(app_id, outcome.message)
                if self.peers is not None:
                    self.peers.broadcast(app_id, outcome.message)
        return outcome

    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
        """Revoke a message: its undelivered copies, queued ones included, are never sent."""
        revoked = await self.store.revoke(app_id, message_id)
        if revoked is not None:
            message, stopped = revoked
            for device_id in stopped:
                conn = self._connections.get((app_id, device_id))
                if conn is not None:
                    conn.drop(message.message_id)
            if self.peers is not None:
                self.peers.revoke(app_id, message.message_id)
        return revoked

    def drop_everywhere_here(self, app_id: str, message_id: str) -> None:
        """A message revoked on another node: no connection of the app here sends it."""
        for (a, _), conn in list(self._connections.items()):
            if a == app_id:
                conn.drop(message_id)

    def _route(self, app_id: str, message: Message, device_ids: Iterable[str]) -> None:
        """Hand a freshly committed message to the connections online now (and hint the
        nodes holding the others, if there are any); never waits."""
        remote: list[str] = []
        for device_id in device_ids:
            conn = self._connections.get((app_id, device_id))
            if conn is not None:
                conn.deliver(message)
            elif self.peers is not None:
                remote.append(device_id)
        if remote and self.peers is not None:
            self.peers.deliver(app_id, message, remote)

    def deliver_here(self, app_id: str, message: Message, device_ids: Iterable[str]) -> None:
        """A message another node committed, for devices connected here (a hint)."""
        for device_id in device_ids:
            conn = self._connections.get((app_id, device_id))
            if conn is not None:
                conn.deliver(message)

    async def open_broadcast(self, app_id: str, message: Message) -> None:
        """Open a broadcast's deliveries for the app's devices online now, and send them.

        Devices that connect later get it in their backlog (device_online). The
        store opens a device's delivery once and says which this call opened,
        so each device gets its copy once, whoever opened it.
        """
        online = [
            (c.device_id, c.platform) for (a, _), c in self._connections.items() if a == app_id
        ]
        if online:
            opened = await self.store.open_broadcast(app_id, message.seq, online)
            self.deliver_here(app_id, message, opened)

    # --- acks and sent marks: recorded in the next group commit, nobody waits -------

    def ack_nowait(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone
    ) -> None:
        """Queue a device's ack for the next group commit; `done` is told the outcome.

        trio.WouldBlock if the store holds too many unrecorded acks: then `ack`.
        """
        self.store.queue_ack_nowait(app_id, device_id, message_ids, self._recorded(done))

    async def ack(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone
    ) -> None:
        """`ack_nowait`, first waiting for room if the store is behind (backpressure)."""
        await self.store.queue_ack(app_id, device_id, message_ids, self._recorded(done))

    def _recorded(self, done: AckDone) -> AckDone:
        def recorded(ids: Sequence[str], acked: int, error: BaseException | None) -> None:
            self.metrics.acked(ids, acked)
            done(ids, acked, error)

        return recorded

    def sent_nowait(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        """Pushes written to a device's socket: counted, and sent_at in the next commit."""
        self.metrics.pushes_sent(len(message_ids))
        try:
            self.store.queue_sent_nowait(app_id, device_id, message_ids)
        except (trio.WouldBlock, StoreUnavailable):
            # Telemetry only: a full queue (or a closing store) loses the sent_at mark.
            log.warning("event=sent_marks_dropped device=%s count=%d", device_id, len(message_ids))

    # --- bindings -----------------------------------------------------------------

    async def bind(self, app_id: str, device_id: str, user_id: str) -> None:
        """Bind; the device, if online here, drops the old user's queued messages and
        catches up with the new user's waiting ones."""
        upto_seq = await self.store.bind(app_id, device_id, user_id)
        if not self.rebound_here(app_id, device_id, user_id, upto_seq) and self.peers is not None:
            self.peers.rebound(app_id, device_id, user_id)

    async def bind_and_deliver(self, app_id: str, device_id: str, user_id: str) -> None:
        """The API's bind (kept for its callers: `bind` delivers too)."""
        await self.bind(app_id, device_id, user_id)

    async def unbind(self, app_id: str, device_id: str) -> str | None:
        """Unbind; the device, if online here, drops the old user's queued messages."""
        old = await self.store.unbind(app_id, device_id)
        if not self.rebound_here(app_id, device_id, None, None) and self.peers is not None:
            self.peers.rebound(app_id, device_id, None)
        return old

    def rebound_here(
        self, app_id: str, device_id: str, user_id: str | None, upto_seq: int | None
    ) -> bool:
        """A committed (un)bind for the device's connection here, if any (False if none)."""
        key = (app_id, device_id)
        conn = self._connections.get(key)
        if conn is None:
            return False
        self._users[key] = (user_id,)
        conn.rebound(user_id, upto_seq)
        return True

    def session_users(self) -> dict[tuple[str, str], tuple[str | None]]:
        """(app, device) -> (user,) each connection here was last told; compare a later
        `session_user()` by identity to know whether it changed meanwhile."""
        return dict(self._users)

    def session_user(self, app_id: str, device_id: str) -> tuple[str | None] | None:
        return self._users.get((app_id, device_id))

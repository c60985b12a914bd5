"""PostgresStore: the Store interface on PostgreSQL, for many nodes sharing one database.

Writes go through one writer thread per node (writer.py: group commit,
savepoints, batched kinds); reads through a small pool of read connections
(readers.py). Every method behaves as the SQLite store's (gateway/store/
sqlite.py); the shared conformance suite in tests/store_pg runs both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import trio

from gateway.clock import Clock, SystemClock

from ..deferred import AckDone, AckItem, SentItem, acks_done, ids_weight
from ..records import (
    App,
    BroadcastStats,
    Delivery,
    DeviceInfo,
    Message,
    NewMessage,
    PushOutcome,
    StoreStatistics,
    Template,
)
from ..retention import retention_cutoff
from ..sqlite import ACKS_PER_COMMIT, ACKS_WAITING, SENT_WAITING
from ..stats import PushStats
from ..vendor_methods import VendorStoreMethods
from . import acks, devices, listing, messages, pages, queries, sweep
from .connect import Reconnect, check_url, connect, describe
from .ops import BatchKind
from .readers import ReadPool
from .schema import migrate
from .tx import Connection
from .writer import CommitObserver, Writer

log = logging.getLogger("pushgate.store.postgres")
T = TypeVar("T")

READERS = 4
# An unsettled backlog page (pages.py) is read again after this, for at most
# HORIZON_WAIT in all: about one group commit of another node. Past that (a
# transaction stuck on another node), the page is taken as it is: a message
# that commits later below it is still routed to the device when it commits.
HORIZON_POLL = 0.005
HORIZON_WAIT = 2.0

_INSERT = BatchKind("insert_messages", messages.insert_messages)
_ONLINE = BatchKind("device_online", devices.devices_online)
_OFFLINE = BatchKind("device_offline", devices.devices_offline)


class PostgresStore(VendorStoreMethods):
    def __init__(self, url: str, *, clock: Clock | None = None, readers: int = READERS) -> None:
        check_url(url)
        self.url = url
        self.clock: Clock = clock or SystemClock()
        self._reconnect = Reconnect()
        self._writer = Writer(
            partial(connect, url, role="writer", autocommit=False), self._reconnect
        )
        self._pool = ReadPool(
            partial(connect, url, role="reader", autocommit=True), self._reconnect, readers
        )
        self._acks = self._writer.deferred(
            acks.write_acks,
            acks_done,
            weight=ids_weight,
            limit=ACKS_WAITING,
            per_commit=ACKS_PER_COMMIT,
        )
        self.unsettled_reads = 0  # backlog pages read again (pages.py): for tests, metrics
        self._sent = self._writer.deferred(
            acks.write_sent, weight=ids_weight, limit=SENT_WAITING, per_commit=SENT_WAITING
        )

    def __repr__(self) -> str:
        return f"PostgresStore({describe(self.url)})"

    @property
    def reachable(self) -> bool:
        """False while connecting to the server fails (for /healthz)."""
        return not self._reconnect.failing

    def statistics(self) -> StoreStatistics:
        return self._writer.statistics()

    def observe_commits(self, observer: CommitObserver | None) -> None:
        """Call `observer(batch_size, seconds)` on the writer thread after each commit."""
        self._writer.on_commit = observer

    async def _read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` on a read connection, once the acks and sent marks queued before
        this read are committed (the SQLite store's reads queue behind them)."""
        await self._writer.deferred_written()
        return await self._pool.run(fn)

    async def _vendor_write(self, fn: Callable[[Connection], T]) -> T:
        return await self._writer.call(lambda tx: fn(tx.conn))

    async def _vendor_read(self, fn: Callable[[Connection], T]) -> T:
        return await self._read(fn)

    async def open(self) -> None:
        """Connect and migrate; StoreUnavailable (unreachable) or SchemaTooNew if not."""

        def first(conn: Connection) -> None:
            conn.autocommit = True
            version = migrate(conn)
            conn.autocommit = False
            log.info("event=store_opened store=%s schema=%d", describe(self.url), version)

        await self._writer.start(first)

    async def aclose(self) -> None:
        await self._writer.stop()
        self._pool.close()

    # apps
    async def upsert_app(
        self, *, app_id: str, name: str, api_key: str, secret: str, verify: bool
    ) -> App:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                queries.upsert_app,
                app_id=app_id,
                name=name,
                api_key=api_key,
                secret=secret,
                verify=verify,
                now=now,
            )
        )

    async def app_by_api_key(self, api_key: str) -> App | None:
        return await self._read(partial(queries.app_by_api_key, api_key=api_key))

    async def get_app(self, app_id: str) -> App | None:
        return await self._read(partial(queries.get_app, app_id=app_id))

    async def count_apps(self) -> int:
        return await self._read(queries.count_apps)

    # messages
    async def insert_messages(self, app: App, items: Sequence[NewMessage]) -> list[PushOutcome]:
        now = self.clock.now_ms()
        op = messages.InsertOp(app, items, now, retention_cutoff(now))
        return await self._writer.call_batched(_INSERT, op)

    async def get_message(
        self, app_id: str, message_id: str
    ) -> tuple[Message, list[Delivery]] | None:
        return await self._read(partial(queries.get_message, app_id=app_id, message_id=message_id))

    # devices
    async def device_online(
        self, app_id: str, device_id: str, platform: str, *, page_size: int
    ) -> tuple[str | None, list[Message]]:
        now = self.clock.now_ms()
        await self._writer.call_batched(_ONLINE, devices.Online(app_id, device_id, platform, now))
        return await self.pending_page(app_id, device_id, after_seq=0, limit=page_size)

    async def claim_device(self, app_id: str, device_id: str, node_id: str) -> int:
        """The device's next fencing epoch, now held by `node_id` (many nodes: a hello
        takes one; the newest epoch owns the device's route). Committed on return (one
        autocommit statement on a read connection: see devices.claim_device)."""
        now = self.clock.now_ms()
        claim = partial(
            devices.claim_device, app_id=app_id, device_id=device_id, node_id=node_id, now=now
        )
        return await self._pool.run(claim)

    async def unacked_deliveries(
        self,
        devices: Sequence[tuple[str, str]],
        *,
        created_before: int,
        sent_before: int,
        limit: int,
    ) -> list[tuple[str, Message]]:
        """Status-0 deliveries of these (app, device) pairs a node re-sends (its sweep)."""
        now = self.clock.now_ms()
        read = partial(
            sweep.unacked_deliveries,
            devices=list(devices),
            created_before=created_before,
            sent_before=sent_before,
            now=now,
            limit=limit,
        )
        return await self._pool.run(read)

    async def bound_users(
        self, devices: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str, str | None]]:
        """(app, device, user) of these devices: a node's sweep corrects its sessions."""
        return await self._pool.run(partial(sweep.bound_users, devices=list(devices)))

    async def missing_broadcasts(
        self,
        online: Sequence[tuple[str, str, str]],
        *,
        created_from: int,
        created_before: int,
        limit: int,
    ) -> list[tuple[str, str, Message]]:
        """(device, platform, broadcast) pairs of online devices with no delivery of an
        open broadcast created in the window: a node's sweep opens and sends them."""
        read = partial(
            sweep.missing_broadcasts,
            online=list(online),
            created_from=created_from,
            created_before=created_before,
            now=self.clock.now_ms(),
            limit=limit,
        )
        return await self._pool.run(read)

    async def device_offline(self, app_id: str, device_id: str) -> None:
        now = self.clock.now_ms()
        await self._writer.call_batched(_OFFLINE, devices.Offline(app_id, device_id, now))

    def queue_ack_nowait(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone | None
    ) -> None:
        item: AckItem = (app_id, device_id, message_ids, self.clock.now_ms(), done)
        self._acks.put_nowait(item)

    async def queue_ack(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone | None
    ) -> None:
        item: AckItem = (app_id, device_id, message_ids, self.clock.now_ms(), done)
        await self._acks.put(item)

    def queue_sent_nowait(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        item: SentItem = (app_id, device_id, message_ids, self.clock.now_ms())
        self._sent.put_nowait(item)

    async def bind(self, app_id: str, device_id: str, user_id: str) -> int | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(devices.bind, app_id=app_id, device_id=device_id, user_id=user_id, now=now)
        )

    async def unbind(self, app_id: str, device_id: str) -> str | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(devices.unbind, app_id=app_id, device_id=device_id, now=now)
        )

    async def get_device(self, app_id: str, device_id: str) -> DeviceInfo | None:
        return await self._read(partial(devices.get_device, app_id=app_id, device_id=device_id))

    async def user_devices(self, app_id: str, user_id: str) -> list[DeviceInfo]:
        return await self._read(partial(devices.user_devices, app_id=app_id, user_id=user_id))

    # the message list, the search, retention
    async def list_messages(
        self, app_id: str, *, before_seq: int | None, limit: int
    ) -> list[Message]:
        now = self.clock.now_ms()
        return await self._read(
            partial(
                listing.list_messages, app_id=app_id, before_seq=before_seq, limit=limit, now=now
            )
        )

    async def search_message(self, app_id: str, target_id: str, msg_key: str) -> Message | None:
        now = self.clock.now_ms()
        return await self._read(
            partial(
                listing.search_message,
                app_id=app_id,
                target_id=target_id,
                msg_key=msg_key,
                now=now,
            )
        )

    async def purge_before(self, cutoff: int, max_rows: int) -> tuple[int, int]:
        return await self._writer.call(
            partial(listing.purge_before, cutoff=cutoff, max_rows=max_rows)
        )

    async def push_stats(self, app_id: str, since_ms: int) -> PushStats:
        return await self._read(partial(listing.push_stats, app_id=app_id, since_ms=since_ms))

    # templates, broadcasts, verification, revocation
    async def put_template(
        self, app_id: str, name: str, title: str, content: str
    ) -> tuple[Template, bool]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                queries.put_template,
                app_id=app_id,
                name=name,
                title=title,
                content=content,
                now=now,
            )
        )

    async def get_template(self, app_id: str, name: str) -> Template | None:
        return await self._read(partial(queries.get_template, app_id=app_id, name=name))

    async def delete_template(self, app_id: str, name: str) -> bool:
        return await self._writer.call(partial(queries.delete_template, app_id=app_id, name=name))

    async def open_broadcast(
        self, app_id: str, seq: int, online: Sequence[tuple[str, str]]
    ) -> list[str]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(listing.open_broadcast, app_id=app_id, seq=seq, online=online, now=now)
        )

    async def broadcast_stats(self, app_id: str, message_id: str) -> BroadcastStats | None:
        return await self._read(
            partial(listing.broadcast_stats, app_id=app_id, message_id=message_id)
        )

    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(queries.verify, app_id=app_id, message_id=message_id, approve=approve, now=now)
        )

    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
        return await self._writer.call(
            partial(queries.revoke, app_id=app_id, message_id=message_id)
        )

    async def pending_page(
        self,
        app_id: str,
        device_id: str,
        *,
        after_seq: int,
        limit: int,
        user_id: str | None = None,
        upto_seq: int | None = None,
    ) -> tuple[str | None, list[Message]]:
        """As the Store's; a page is read again until it is settled (pages.py)."""
        read = partial(
            pages.pending_page,
            app_id=app_id,
            device_id=device_id,
            after_seq=after_seq,
            limit=limit,
            now=self.clock.now_ms(),
            user_id=user_id,
            upto_seq=upto_seq,
        )
        with trio.move_on_after(HORIZON_WAIT):
            while True:
                page = await self._read(read)
                if page.settled:
                    return page.user_id, page.messages
                self.unsettled_reads += 1
                await trio.sleep(HORIZON_POLL)
        log.warning("event=backlog_page_unsettled device=%s wait=%.1f", device_id, HORIZON_WAIT)
        page = await self._read(read)
        return page.user_id, page.messages

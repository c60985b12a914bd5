"""The embedded SQLite store: one writer thread, group commit, WAL + synchronous=FULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from gateway.clock import Clock, SystemClock

from . import broadcasts, deferred, devices, listing, vendor_folded
from . import queries as q
from . import stats as console_stats
from .records import (
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
from .retention import retention_cutoff
from .schema import connect, migrate
from .stats import PushStats
from .vendor_methods import VendorStoreMethods
from .writer import CommitObserver, Writer

T = TypeVar("T")

# Acks are bounded in message ids, not frames: at most ACKS_WAITING ids wait
# for a commit at once (past it a connection waits: backpressure), and one
# group commit records at most ACKS_PER_COMMIT of them, so a flood of acks
# never makes one commit long for every app.
ACKS_WAITING = 100_000
ACKS_PER_COMMIT = 20_000
SENT_WAITING = 200_000  # sent marks are telemetry: past this they are dropped


class SqliteStore(VendorStoreMethods):
    def __init__(
        self, path: str, *, clock: Clock | None = None, max_pages: int | None = None
    ) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.max_pages = max_pages
        self._writer = Writer(self._connect)
        # (transaction, (app, device, message_id) pairs) of the last acks written:
        # a sent mark of a pair acked in the same transaction is already written.
        self._acked_in: tuple[int, set[tuple[str, str, str]]] = (0, set())
        self._acks = self._writer.deferred(
            self._write_acks,
            deferred.acks_done,
            weight=deferred.ids_weight,
            limit=ACKS_WAITING,
            per_commit=ACKS_PER_COMMIT,
        )
        self._sent = self._writer.deferred(
            self._write_sent,
            weight=deferred.ids_weight,
            limit=SENT_WAITING,
            per_commit=SENT_WAITING,
        )

    def _write_acks(self, conn: sqlite3.Connection, items: list[deferred.AckItem]) -> list[int]:
        counts = deferred.write_acks(conn, items)
        pairs = {(app, device, i) for app, device, ids, _, _ in items for i in ids}
        self._acked_in = (self._writer.transaction, pairs)
        return counts

    def _write_sent(self, conn: sqlite3.Connection, items: list[deferred.SentItem]) -> int:
        """Sent marks; those acked in this transaction were marked by their ack already.

        (Acks run first in a group commit: their Deferred was made first.)
        """
        transaction, acked = self._acked_in
        if transaction != self._writer.transaction:
            acked = set()
        return deferred.write_sent(conn, items, acked)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, max_pages=self.max_pages)
        migrate(conn)
        return conn

    def statistics(self) -> StoreStatistics:
        return self._writer.statistics()

    async def _vendor_write(self, fn: Callable[[Any], T]) -> T:
        return await self._writer.call(fn)

    async def _vendor_read(self, fn: Callable[[Any], T]) -> T:
        return await self._writer.call(fn)

    async def open(self) -> None:
        self._writer.start()

    async def aclose(self) -> None:
        await self._writer.stop()

    async def set_max_pages(self, max_pages: int) -> int:
        """Move the file cap at runtime (space came back); returns the cap now applied."""

        def apply(conn: sqlite3.Connection) -> int:
            return int(conn.execute(f"PRAGMA max_page_count = {int(max_pages)}").fetchone()[0])

        self.max_pages = max_pages
        return await self._writer.call(apply)

    # apps
    async def upsert_app(
        self, *, app_id: str, name: str, api_key: str, secret: str, verify: bool
    ) -> App:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                q.upsert_app,
                app_id=app_id,
                name=name,
                api_key=api_key,
                secret=secret,
                verify=verify,
                now=now,
            )
        )

    async def app_by_api_key(self, api_key: str) -> App | None:
        return await self._writer.call(partial(q.app_by_api_key, api_key=api_key))

    async def get_app(self, app_id: str) -> App | None:
        return await self._writer.call(partial(q.get_app, app_id=app_id))

    async def count_apps(self) -> int:
        return await self._writer.call(q.count_apps)

    # messages
    async def insert_messages(self, app: App, items: Sequence[NewMessage]) -> list[PushOutcome]:
        now = self.clock.now_ms()
        kept_since = retention_cutoff(now)
        return await self._writer.call(
            partial(
                vendor_folded.insert_messages, app=app, items=items, now=now, kept_since=kept_since
            )
        )

    async def get_message(
        self, app_id: str, message_id: str
    ) -> tuple[Message, list[Delivery]] | None:
        return await self._writer.call(partial(q.get_message, app_id=app_id, message_id=message_id))

    # devices
    async def device_online(
        self, app_id: str, device_id: str, platform: str, *, page_size: int
    ) -> tuple[str | None, list[Message]]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                devices.device_online,
                app_id=app_id,
                device_id=device_id,
                platform=platform,
                now=now,
                limit=page_size,
            )
        )

    async def device_offline(self, app_id: str, device_id: str) -> None:
        now = self.clock.now_ms()
        await self._writer.call(
            partial(devices.device_offline, app_id=app_id, device_id=device_id, now=now)
        )

    def queue_ack_nowait(
        self,
        app_id: str,
        device_id: str,
        message_ids: Sequence[str],
        done: deferred.AckDone | None,
    ) -> None:
        self._acks.put_nowait((app_id, device_id, message_ids, self.clock.now_ms(), done))

    async def queue_ack(
        self,
        app_id: str,
        device_id: str,
        message_ids: Sequence[str],
        done: deferred.AckDone | None,
    ) -> None:
        await self._acks.put((app_id, device_id, message_ids, self.clock.now_ms(), done))

    def queue_sent_nowait(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        self._sent.put_nowait((app_id, device_id, message_ids, self.clock.now_ms()))

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
        return await self._writer.call(
            partial(devices.get_device, app_id=app_id, device_id=device_id)
        )

    async def user_devices(self, app_id: str, user_id: str) -> list[DeviceInfo]:
        return await self._writer.call(
            partial(devices.user_devices, app_id=app_id, user_id=user_id)
        )

    # the message list, the search, retention (listing.py)
    async def list_messages(
        self, app_id: str, *, before_seq: int | None, limit: int
    ) -> list[Message]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                listing.list_messages, app_id=app_id, before_seq=before_seq, limit=limit, now=now
            )
        )

    async def search_message(self, app_id: str, target_id: str, msg_key: str) -> Message | None:
        now = self.clock.now_ms()
        return await self._writer.call(
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

    def observe_commits(self, observer: CommitObserver | None) -> None:
        """Call `observer(batch_size, seconds)` on the writer thread after each commit."""
        self._writer.on_commit = observer

    # the console's live numbers (stats.py)
    async def push_stats(self, app_id: str, since_ms: int) -> PushStats:
        return await self._writer.call(
            partial(console_stats.push_stats, app_id=app_id, since_ms=since_ms)
        )

    # templates, broadcasts, verification, revocation (queries.py)
    async def put_template(
        self, app_id: str, name: str, title: str, content: str
    ) -> tuple[Template, bool]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.put_template, app_id=app_id, name=name, title=title, content=content, now=now)
        )

    async def get_template(self, app_id: str, name: str) -> Template | None:
        return await self._writer.call(partial(q.get_template, app_id=app_id, name=name))

    async def delete_template(self, app_id: str, name: str) -> bool:
        return await self._writer.call(partial(q.delete_template, app_id=app_id, name=name))

    async def open_broadcast(
        self, app_id: str, seq: int, online: Sequence[tuple[str, str]]
    ) -> list[str]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(broadcasts.open_broadcast, app_id=app_id, seq=seq, online=online, now=now)
        )

    async def broadcast_stats(self, app_id: str, message_id: str) -> BroadcastStats | None:
        return await self._writer.call(
            partial(broadcasts.broadcast_stats, app_id=app_id, message_id=message_id)
        )

    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.verify, app_id=app_id, message_id=message_id, approve=approve, now=now)
        )

    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
        return await self._writer.call(partial(q.revoke, app_id=app_id, message_id=message_id))

    # --- added by the core redesign: paged backlogs, statistics ---------------------

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
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                devices.pending_page,
                app_id=app_id,
                device_id=device_id,
                after_seq=after_seq,
                limit=limit,
                now=now,
                user_id=user_id,
                upto_seq=upto_seq,
            )
        )

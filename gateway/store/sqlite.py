"""The embedded SQLite store: one writer thread, group commit, WAL + synchronous=FULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from gateway.clock import Clock, SystemClock

from . import deferred, listing
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
    Template,
)
from .schema import connect, migrate
from .stats import PushStats
from .writer import CommitObserver, Writer, WriterStats


class SqliteStore:
    def __init__(
        self, path: str, *, clock: Clock | None = None, max_pages: int | None = None
    ) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.max_pages = max_pages
        self._writer = Writer(self._connect)
        self._acks = self._writer.deferred(deferred.write_acks, deferred.acks_done, limit=50_000)
        self._sent = self._writer.deferred(deferred.write_sent, limit=200_000)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path, max_pages=self.max_pages)
        migrate(conn)
        return conn

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

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
        return await self._writer.call(partial(q.insert_messages, app=app, items=items, now=now))

    async def get_message(
        self, app_id: str, message_id: str
    ) -> tuple[Message, list[Delivery]] | None:
        return await self._writer.call(partial(q.get_message, app_id=app_id, message_id=message_id))

    # devices
    async def device_online(
        self, app_id: str, device_id: str, platform: str
    ) -> tuple[str | None, list[Message]]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.device_online, app_id=app_id, device_id=device_id, platform=platform, now=now)
        )

    async def device_offline(self, app_id: str, device_id: str) -> None:
        now = self.clock.now_ms()
        await self._writer.call(
            partial(q.device_offline, app_id=app_id, device_id=device_id, now=now)
        )

    async def ack(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> list[int]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.ack, app_id=app_id, device_id=device_id, message_ids=message_ids, now=now)
        )

    def defer_ack(
        self,
        app_id: str,
        device_id: str,
        message_ids: Sequence[str],
        observer: deferred.AckObserver | None = None,
    ) -> bool:
        """Record an ack in the next group commit; False if too many wait already."""
        item = (app_id, device_id, message_ids, self.clock.now_ms(), observer)
        return self._acks.put_nowait(item)

    async def ack_room(self) -> None:
        """Wait until deferred acks are below their limit again."""
        await self._acks.room()

    def defer_mark_sent(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> bool:
        """Record sent_at in the next group commit; False (dropped) if too many wait."""
        return self._sent.put_nowait((app_id, device_id, message_ids, self.clock.now_ms()))

    async def bind(self, app_id: str, device_id: str, user_id: str) -> list[Message]:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.bind, app_id=app_id, device_id=device_id, user_id=user_id, now=now)
        )

    async def unbind(self, app_id: str, device_id: str) -> str | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.unbind, app_id=app_id, device_id=device_id, now=now)
        )

    async def get_device(self, app_id: str, device_id: str) -> DeviceInfo | None:
        return await self._writer.call(partial(q.get_device, app_id=app_id, device_id=device_id))

    async def user_devices(self, app_id: str, user_id: str) -> list[DeviceInfo]:
        return await self._writer.call(partial(q.user_devices, app_id=app_id, user_id=user_id))

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
            partial(q.open_broadcast, app_id=app_id, seq=seq, online=online, now=now)
        )

    async def broadcast_stats(self, app_id: str, message_id: str) -> BroadcastStats | None:
        return await self._writer.call(
            partial(q.broadcast_stats, app_id=app_id, message_id=message_id)
        )

    async def mark_sent(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> int:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(
                q.mark_sent, app_id=app_id, device_id=device_id, message_ids=message_ids, now=now
            )
        )

    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.verify, app_id=app_id, message_id=message_id, approve=approve, now=now)
        )

    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None:
        now = self.clock.now_ms()
        return await self._writer.call(
            partial(q.revoke, app_id=app_id, message_id=message_id, now=now)
        )

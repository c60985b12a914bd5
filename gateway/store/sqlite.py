"""The embedded SQLite store: one writer thread, group commit, WAL + synchronous=FULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import partial

from gateway.clock import Clock, SystemClock

from . import queries as q
from .records import App, Delivery, DeviceInfo, Message, NewMessage, PushOutcome
from .schema import connect, migrate
from .writer import Writer, WriterStats


class SqliteStore:
    def __init__(self, path: str, *, clock: Clock | None = None) -> None:
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self._writer = Writer(self._connect)

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.path)
        migrate(conn)
        return conn

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    async def open(self) -> None:
        self._writer.start()

    async def aclose(self) -> None:
        await self._writer.stop()

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

"""The Store interface: what the hub and the API need from durable storage.

SQLite implements it today; PostgreSQL slots in behind the same methods. It
speaks only in records (records.py): no connection, cursor or SQL crosses it.
Every method that changes state returns only after the change is committed,
except the `queue_*` ones: acks and sent marks nobody waits for, recorded in
the next group commit (their outcome comes back through a callback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .deferred import AckDone
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
from .stats import PushStats
from .vendor_records import (
    ChannelPolicy,
    FallbackClaim,
    FallbackOutcome,
    StoredChannel,
    VendorAnswer,
    VendorRegistration,
)


class Store(Protocol):
    async def open(self) -> None: ...
    async def aclose(self) -> None: ...

    async def upsert_app(
        self, *, app_id: str, name: str, api_key: str, secret: str, verify: bool
    ) -> App: ...
    async def app_by_api_key(self, api_key: str) -> App | None: ...
    async def get_app(self, app_id: str) -> App | None: ...
    async def count_apps(self) -> int: ...

    async def insert_messages(self, app: App, items: Sequence[NewMessage]) -> list[PushOutcome]: ...
    async def get_message(
        self, app_id: str, message_id: str
    ) -> tuple[Message, list[Delivery]] | None: ...

    async def device_online(
        self, app_id: str, device_id: str, platform: str, *, page_size: int
    ) -> tuple[str | None, list[Message]]:
        """Record the device online; its user and the first `page_size` messages to send it."""
        ...

    async def device_offline(self, app_id: str, device_id: str) -> None: ...
    def queue_ack_nowait(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone | None
    ) -> None:
        """Record an ack in the next group commit; trio.WouldBlock if too many acks wait."""
        ...

    async def queue_ack(
        self, app_id: str, device_id: str, message_ids: Sequence[str], done: AckDone | None
    ) -> None:
        """`queue_ack_nowait`, first waiting for room (returns before the commit)."""
        ...

    def queue_sent_nowait(self, app_id: str, device_id: str, message_ids: Sequence[str]) -> None:
        """Record sent_at in the next group commit; trio.WouldBlock if too many wait."""
        ...

    async def bind(self, app_id: str, device_id: str, user_id: str) -> int | None:
        """Bind; the highest seq of the user's messages now attached to the device, or None."""
        ...

    async def unbind(self, app_id: str, device_id: str) -> str | None: ...
    async def get_device(self, app_id: str, device_id: str) -> DeviceInfo | None: ...
    async def user_devices(self, app_id: str, user_id: str) -> list[DeviceInfo]: ...

    # the message list, the search, retention (listing.py)
    async def list_messages(
        self, app_id: str, *, before_seq: int | None, limit: int
    ) -> list[Message]: ...
    async def search_message(self, app_id: str, target_id: str, msg_key: str) -> Message | None: ...
    # At most `max_rows` rows of each table per call; (messages, deliveries) deleted.
    async def purge_before(self, cutoff: int, max_rows: int) -> tuple[int, int]: ...

    # the console's live numbers (stats.py): `since_ms` starts a UTC day
    async def push_stats(self, app_id: str, since_ms: int) -> PushStats: ...

    # templates, broadcasts, verification, revocation (queries.py)
    async def put_template(
        self, app_id: str, name: str, title: str, content: str
    ) -> tuple[Template, bool]: ...
    async def get_template(self, app_id: str, name: str) -> Template | None: ...
    async def delete_template(self, app_id: str, name: str) -> bool: ...
    async def open_broadcast(
        self, app_id: str, seq: int, online: Sequence[tuple[str, str]]
    ) -> list[str]: ...
    async def broadcast_stats(self, app_id: str, message_id: str) -> BroadcastStats | None: ...
    async def verify(self, app_id: str, message_id: str, approve: bool) -> PushOutcome | None: ...
    async def revoke(self, app_id: str, message_id: str) -> tuple[Message, list[str]] | None: ...

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
        """The device's user now, and up to `limit` messages to send it (after_seq < seq
        <= upto_seq, in order); the user tells whether the page was read before a bind."""
        ...

    def statistics(self) -> StoreStatistics: ...

    # --- vendor channels (vendor_methods.py, CONTRACT §6) ------------------------------

    async def put_channel(self, app_id: str, vendor: str, blob: bytes) -> bool: ...
    async def get_channel(self, app_id: str, vendor: str) -> StoredChannel | None: ...
    async def list_channels(self, app_id: str) -> list[StoredChannel]: ...
    async def delete_channel(self, app_id: str, vendor: str) -> bool: ...
    async def put_channel_policy(self, app_id: str, fallback_after_seconds: int) -> None: ...
    async def get_channel_policy(self, app_id: str) -> ChannelPolicy: ...
    async def set_vendor_registration(
        self, app_id: str, device_id: str, vendor: str, token: str
    ) -> None: ...
    async def delete_vendor_registration(self, app_id: str, device_id: str) -> bool: ...
    async def get_vendor_registration(
        self, app_id: str, device_id: str
    ) -> VendorRegistration | None: ...
    async def claim_fallbacks(self, owner: str, lease_ms: int, limit: int) -> list[FallbackClaim]:
        """Up to `limit` due deliveries, leased to `owner` for `lease_ms`."""
        ...

    async def finish_fallbacks(self, outcomes: Sequence[FallbackOutcome]) -> int: ...
    async def vendor_answers(self, app_id: str, message_seq: int) -> list[VendorAnswer]: ...

"""The vendor channels' part of the Store interface, shared by both stores.

A store mixes this in and says how to run a function of a connection as a
committed write (`_vendor_write`) and as a read (`_vendor_read`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from gateway.clock import Clock

from . import vendor as v
from .vendor_records import (
    ChannelPolicy,
    FallbackClaim,
    FallbackOutcome,
    StoredChannel,
    VendorAnswer,
    VendorRegistration,
)

T = TypeVar("T")


class VendorStoreMethods:
    clock: Clock

    async def _vendor_write(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    async def _vendor_read(self, fn: Callable[[Any], T]) -> T:
        raise NotImplementedError

    async def put_channel(self, app_id: str, vendor: str, blob: bytes) -> bool:
        """Store encrypted credentials; True if the app had none for `vendor`."""
        now = self.clock.now_ms()
        return await self._vendor_write(
            partial(v.put_channel, app_id=app_id, vendor=vendor, blob=blob, now=now)
        )

    async def get_channel(self, app_id: str, vendor: str) -> StoredChannel | None:
        return await self._vendor_read(partial(v.get_channel, app_id=app_id, vendor=vendor))

    async def list_channels(self, app_id: str) -> list[StoredChannel]:
        return await self._vendor_read(partial(v.list_channels, app_id=app_id))

    async def delete_channel(self, app_id: str, vendor: str) -> bool:
        return await self._vendor_write(partial(v.delete_channel, app_id=app_id, vendor=vendor))

    async def put_channel_policy(self, app_id: str, fallback_after_seconds: int) -> None:
        now = self.clock.now_ms()
        await self._vendor_write(
            partial(
                v.put_policy,
                app_id=app_id,
                fallback_after_seconds=fallback_after_seconds,
                now=now,
            )
        )

    async def get_channel_policy(self, app_id: str) -> ChannelPolicy:
        return await self._vendor_read(partial(v.get_policy, app_id=app_id))

    async def set_vendor_registration(
        self, app_id: str, device_id: str, vendor: str, token: str
    ) -> None:
        """Register (or replace) the device's vendor token; its pending deliveries are
        scheduled for fallback if the app has that vendor configured."""
        now = self.clock.now_ms()
        await self._vendor_write(
            partial(
                v.set_registration,
                app_id=app_id,
                device_id=device_id,
                vendor=vendor,
                token=token,
                now=now,
            )
        )

    async def delete_vendor_registration(self, app_id: str, device_id: str) -> bool:
        return await self._vendor_write(
            partial(v.delete_registration, app_id=app_id, device_id=device_id)
        )

    async def get_vendor_registration(
        self, app_id: str, device_id: str
    ) -> VendorRegistration | None:
        return await self._vendor_read(
            partial(v.get_registration, app_id=app_id, device_id=device_id)
        )

    async def claim_fallbacks(self, owner: str, lease_ms: int, limit: int) -> list[FallbackClaim]:
        """Up to `limit` due deliveries, leased to `owner` (committed on return).

        `owner` names this one claim (unique per claim: the rows it holds are found
        by it, and only its holder's answer deletes them)."""
        now = self.clock.now_ms()
        return await self._vendor_write(
            partial(v.claim_fallbacks, now=now, owner=owner, lease_ms=lease_ms, limit=limit)
        )

    async def finish_fallbacks(self, outcomes: Sequence[FallbackOutcome]) -> int:
        now = self.clock.now_ms()
        return await self._vendor_write(partial(v.finish_fallbacks, outcomes=outcomes, now=now))

    async def vendor_answers(self, app_id: str, message_seq: int) -> list[VendorAnswer]:
        return await self._vendor_read(
            partial(v.vendor_answers, app_id=app_id, message_seq=message_seq)
        )

"""The sweep of one node of many: what lost pub/sub hints did not bring, from the store.

Redis pub/sub is at-most-once, so every `sweep_interval` and whenever the
node's subscription (re)connects, the node re-reads for the devices connected
to it, in chunks of `SWEEP_CHUNK` devices, one query each:

1. their bound user (a lost `bind` / `unbind`): a session whose user differs
   from the store's is rebound as a hint would have done it (queued copies of
   the old user's messages dropped, the new user's waiting ones caught up);
2. the open broadcasts created since the last sweep (with an overlap) that they
   have no delivery of (a lost `broadcast`): opened and sent;
3. their unacked deliveries created and not sent before the last moments (a
   lost `deliver`, or a device that did not ack): sent again.

Each step is bounded (`SWEEP_ROWS` rows per query). A device may see a
message twice; it de-duplicates by ID.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.hub import Hub
from gateway.store import Message

log = logging.getLogger("pushgate.cluster")

SWEEP_CHUNK = 1000  # devices per sweep query
SWEEP_ROWS = 5000  # rows per sweep query
ANY_SEQ = 2**62  # a rebind on another node: catch up with all of the user's waiting messages
# How far back a sweep looks again for broadcasts it may not have seen committed yet
# (a broadcast's created_at is taken before its group commit), beyond two intervals.
BROADCAST_OVERLAP_MS = 10_000


class SweepStore(Protocol):
    async def unacked_deliveries(
        self,
        devices: Sequence[tuple[str, str]],
        *,
        created_before: int,
        sent_before: int,
        limit: int,
    ) -> list[tuple[str, Message]]: ...

    async def bound_users(
        self, devices: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str, str | None]]: ...

    async def missing_broadcasts(
        self,
        online: Sequence[tuple[str, str, str]],
        *,
        created_from: int,
        created_before: int,
        limit: int,
    ) -> list[tuple[str, str, Message]]: ...

    async def open_broadcast(
        self, app_id: str, seq: int, devices: Sequence[tuple[str, str]]
    ) -> list[str]: ...


@dataclass(slots=True)
class SweepCounts:
    """What one sweep did."""

    rebound: int = 0  # sessions whose user was corrected
    broadcasts: int = 0  # broadcast deliveries opened and sent
    resent: int = 0  # unacked deliveries sent again


class Sweeper:
    """One node's sweep; runs are serialized by the caller."""

    def __init__(self, store: SweepStore, interval_ms: int, started_ms: int) -> None:
        self.store = store
        self.interval_ms = interval_ms
        self._overlap_ms = 2 * interval_ms + BROADCAST_OVERLAP_MS
        # Broadcasts created from here on are looked for; a device that connected
        # earlier had every broadcast then opened by its hello.
        self._broadcasts_from = started_ms - self._overlap_ms

    async def sweep(self, hub: Hub, *, created_before: int, sent_before: int) -> SweepCounts:
        counts = SweepCounts()
        counts.rebound = await self._correct_users(hub)
        counts.broadcasts = await self._open_missed_broadcasts(hub, created_before)
        counts.resent = await self._resend_unacked(hub, created_before, sent_before)
        return counts

    async def _correct_users(self, hub: Hub) -> int:
        """Rebind the sessions whose user is not the store's: a bind or unbind hint
        was lost. A session (un)bound since the snapshot is left alone: that is newer."""
        told = hub.session_users()
        keys = list(told)
        rebound = 0
        for start in range(0, len(keys), SWEEP_CHUNK):
            for app_id, device_id, user_id in await self.store.bound_users(
                keys[start : start + SWEEP_CHUNK]
            ):
                seen = told[(app_id, device_id)]
                if seen[0] == user_id or hub.session_user(app_id, device_id) is not seen:
                    continue
                upto = None if user_id is None else ANY_SEQ
                if hub.rebound_here(app_id, device_id, user_id, upto):
                    log.info("event=session_rebound device=%s user=%s", device_id, user_id)
                    rebound += 1
        return rebound

    async def _open_missed_broadcasts(self, hub: Hub, created_before: int) -> int:
        """Open and send the window's broadcasts the devices here have no delivery of."""
        online = [
            (app_id, device_id, conn.platform)
            for app_id, device_id in hub.local_devices()
            if (conn := hub.connection(app_id, device_id)) is not None
        ]
        created_from = self._broadcasts_from
        complete, opened = True, 0
        for start in range(0, len(online), SWEEP_CHUNK):
            rows = await self.store.missing_broadcasts(
                online[start : start + SWEEP_CHUNK],
                created_from=created_from,
                created_before=created_before,
                limit=SWEEP_ROWS,
            )
            complete = complete and len(rows) < SWEEP_ROWS
            groups: dict[int, tuple[Message, list[tuple[str, str]]]] = {}
            for device_id, platform, message in rows:
                groups.setdefault(message.seq, (message, []))[1].append((device_id, platform))
            for message, devices in groups.values():
                devices_opened = await self.store.open_broadcast(
                    message.app_id, message.seq, devices
                )
                hub.deliver_here(message.app_id, message, devices_opened)
                opened += len(devices_opened)
        if complete:  # else the next sweep looks at the same window again
            self._broadcasts_from = max(created_from, created_before - self._overlap_ms)
        return opened

    async def _resend_unacked(self, hub: Hub, created_before: int, sent_before: int) -> int:
        devices = hub.local_devices()
        resent = 0
        for start in range(0, len(devices), SWEEP_CHUNK):
            rows = await self.store.unacked_deliveries(
                devices[start : start + SWEEP_CHUNK],
                created_before=created_before,
                sent_before=sent_before,
                limit=SWEEP_ROWS,
            )
            for device_id, message in rows:
                hub.deliver_here(message.app_id, message, (device_id,))
            resent += len(rows)
        return resent

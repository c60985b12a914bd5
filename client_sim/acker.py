"""Ack policies: turn received push ids into `ack` frames.

The reader puts `(message_id, received_at)` on a bounded memory channel; one
ack loop per connection takes them off and writes `ack` frames. Ids still
waiting when the connection ends are simply dropped: the gateway resends
unacked messages on the next connection (at-least-once), and the device acks
them then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from protocol import Ack

from .config import DeviceConfig
from .errors import ConnectionClosed
from .transport import DeviceConnection

PendingAck = tuple[str, float]  # (message_id, trio.current_time() when received)
AckSent = Callable[[Sequence[str]], None]
Pending = trio.MemoryReceiveChannel[PendingAck]
AckLoop = Callable[[DeviceConnection, Pending], Awaitable[None]]


def ack_loop_for(config: DeviceConfig, on_sent: AckSent) -> AckLoop | None:
    """The ack loop of `config.ack_mode` (None for "never")."""

    async def immediate(conn: DeviceConnection, pending: Pending) -> None:
        async for message_id, _ in pending:
            if not await _send_ack(conn, [message_id], on_sent):
                return

    async def delayed(conn: DeviceConnection, pending: Pending) -> None:
        # Ids come in arrival order, so their due times never decrease.
        async for message_id, received_at in pending:
            await trio.sleep_until(received_at + config.ack_delay)
            if not await _send_ack(conn, [message_id], on_sent):
                return

    async def batched(conn: DeviceConnection, pending: Pending) -> None:
        async for first_id, _ in pending:
            batch = [first_id]
            # A memory channel's receive is cancel-safe: nothing is lost when
            # the interval ends while waiting.
            with trio.move_on_after(config.ack_batch_interval):
                while len(batch) < config.ack_batch_size:
                    try:
                        message_id, _ = await pending.receive()
                    except trio.EndOfChannel:
                        break
                    batch.append(message_id)
            if not await _send_ack(conn, batch, on_sent):
                return

    loops: dict[str, AckLoop | None] = {
        "immediate": immediate,
        "delayed": delayed,
        "batched": batched,
        "never": None,
    }
    return loops[config.ack_mode]


async def _send_ack(conn: DeviceConnection, ids: list[str], on_sent: AckSent) -> bool:
    """Send one `ack`; False if the connection is gone (the reader will notice)."""
    try:
        await conn.send_frame(Ack(ids=tuple(ids)))
    except ConnectionClosed:
        return False
    on_sent(ids)
    return True

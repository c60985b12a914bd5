"""Acks and sent marks: writes no caller waits for, many of them per group commit.

A device's `ack` gets no reply, so the session need not wait for its commit;
neither does the writer that records `sent_at`. The store hands them to the
writer as `Deferred` items (see writer.py), and these functions write every
item queued since the last commit in one go, with the same statements as the
one-at-a-time queries (queries.ack, queries.mark_sent).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from . import queries as q

AckObserver = Callable[[Sequence[str], int], None]  # (ids of one ack frame, how many changed)
# (app, device, message ids, now, observer)
AckItem = tuple[str, str, Sequence[str], int, AckObserver | None]
SentItem = tuple[str, str, Sequence[str], int]  # (app, device, message ids, now)


def write_acks(conn: sqlite3.Connection, items: list[AckItem]) -> list[int]:
    """Each ack frame as queries.ack would; how many deliveries each changed."""
    return [len(q.ack(conn, app, device, ids, now)) for app, device, ids, now, _ in items]


def acks_done(items: list[AckItem], counts: list[int] | None, error: BaseException | None) -> None:
    """On the Trio thread after the commit: tell each frame's observer (metrics)."""
    if counts is None:
        return  # not recorded: the messages go out again on the next connection
    for (_, _, ids, _, observer), count in zip(items, counts, strict=True):
        if observer is not None:
            observer(ids, count)


def write_sent(conn: sqlite3.Connection, items: list[SentItem]) -> int:
    """sent_at for every written push, one statement per device; first write wins."""
    per_device: dict[tuple[str, str], tuple[list[str], int]] = {}
    for app, device, ids, now in items:
        entry = per_device.get((app, device))
        if entry is None:
            per_device[(app, device)] = (list(ids), now)
        else:
            entry[0].extend(ids)
    return sum(
        q.mark_sent(conn, app, device, ids, now) for (app, device), (ids, now) in per_device.items()
    )

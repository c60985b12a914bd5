"""Acks and sent marks: writes no caller waits for, many of them per group commit.

A device's `ack` gets no reply, so the session need not wait for its commit;
neither does the writer that records `sent_at`. The store hands them to the
writer as `Deferred` items (see writer.py), and these functions write every
item queued since the last commit in one go: one statement per app for all of
them, with the meaning of the one-at-a-time queries (queries.ack,
queries.mark_sent).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

AckObserver = Callable[[Sequence[str], int], None]  # (ids of one ack frame, how many changed)
# (app, device, message ids, now, observer)
AckItem = tuple[str, str, Sequence[str], int, AckObserver | None]
SentItem = tuple[str, str, Sequence[str], int]  # (app, device, message ids, now)


# Every ack of one app in a group commit in one statement, as queries.ack
# does for one frame: this device's delivery of this app's message goes from 0
# to 2 (sent_at set if it was not); the message becomes 2. The (device,
# message_id) pairs come as JSON, each found through the message_id index and
# the deliveries primary key: half the cost of a statement per frame.
_ACK = (
    "UPDATE deliveries SET status = 2, acked_at = ?, modified_at = ?,"
    " sent_at = coalesce(sent_at, ?)"
    " WHERE (message_seq, device_id) IN (SELECT m.seq, json_extract(j.value, '$[0]')"
    " FROM json_each(?) j JOIN messages m"
    " ON m.message_id = json_extract(j.value, '$[1]') AND +m.app_id = ?)"
    " AND +app_id = ? AND status = 0"
    " RETURNING message_seq, device_id"
)
_ACK_MESSAGE = "UPDATE messages SET status = 2, modified_at = ? WHERE seq = ? AND status <> 2"

# What a batch of acks did, per (app, device): the ids acked, how many changed.
AckResult = list[tuple[AckObserver | None, list[str], int]]


def write_acks(conn: sqlite3.Connection, items: list[AckItem]) -> AckResult:
    """Record every ack frame of the batch; per device, how many deliveries changed."""
    per_app: dict[str, tuple[dict[str, tuple[AckObserver | None, list[str]]], int]] = {}
    for app, device, ids, now, observer in items:
        entry = per_app.get(app)
        if entry is None:
            entry = per_app[app] = ({}, now)
        frames = entry[0].get(device)
        if frames is None:
            entry[0][device] = (observer, list(ids))
        else:
            frames[1].extend(ids)
    result: AckResult = []
    for app, (devices, now) in per_app.items():
        pairs = [[device, message_id] for device, (_, ids) in devices.items() for message_id in ids]
        rows = conn.execute(_ACK, (now, now, now, json.dumps(pairs), app, app)).fetchall()
        conn.executemany(_ACK_MESSAGE, [(now, seq) for seq, _ in rows])
        changed: dict[str, int] = {}
        for _, device in rows:
            changed[device] = changed.get(device, 0) + 1
        result.extend((obs, ids, changed.get(device, 0)) for device, (obs, ids) in devices.items())
    return result


def acks_done(items: list[AckItem], result: AckResult | None, error: BaseException | None) -> None:
    """On the Trio thread after the commit: tell each device's observer (metrics)."""
    if result is None:
        return  # not recorded: the messages go out again on the next connection
    for observer, ids, count in result:
        if observer is not None:
            observer(ids, count)


# sent_at for many (device, message) pairs of one app in one statement: the
# pairs come as JSON, each found through the message_id index and the
# deliveries primary key (not per device: 3x cheaper, and no scan however big
# the tables grow).
_MARK_SENT = (
    "UPDATE deliveries SET sent_at = ?"
    " WHERE (message_seq, device_id) IN (SELECT m.seq, json_extract(j.value, '$[0]')"
    " FROM json_each(?) j JOIN messages m"
    " ON m.message_id = json_extract(j.value, '$[1]') AND +m.app_id = ?)"
    " AND +app_id = ? AND sent_at IS NULL"
)


def write_sent(conn: sqlite3.Connection, items: list[SentItem]) -> int:
    """sent_at for every written push (as queries.mark_sent: the first write wins).

    One statement per app; the time recorded is that of the batch's first
    write (the items of one group commit are milliseconds apart).
    """
    per_app: dict[str, tuple[list[tuple[str, str]], int]] = {}
    for app, device, ids, now in items:
        entry = per_app.get(app)
        if entry is None:
            entry = per_app[app] = ([], now)
        entry[0].extend((device, message_id) for message_id in ids)
    changed = 0
    for app, (pairs, now) in per_app.items():
        changed += conn.execute(_MARK_SENT, (now, json.dumps(pairs), app, app)).rowcount
    return changed

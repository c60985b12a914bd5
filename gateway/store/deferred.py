"""Acks and sent marks: writes no caller waits for, many of them per group commit.

A device's `ack` gets no reply when it is recorded, so the session need not
wait for its commit; neither does the recording of `sent_at` after a push was
written. The store hands them to the writer as `Deferred` items (see
writer.py), and these functions write every item taken for one group commit
in one go: one statement per app for all of them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from . import stats

# Called on the Trio thread once an ack is recorded (or failed): the ids of
# the ack, how many deliveries went from 0 to 2, the error if it failed.
AckDone = Callable[[Sequence[str], int, BaseException | None], None]
AckItem = tuple[str, str, Sequence[str], int, AckDone | None]  # (app, device, ids, now, done)
SentItem = tuple[str, str, Sequence[str], int]  # (app, device, message ids, now)


def ids_weight(item: AckItem | SentItem) -> int:
    """What an item costs the writer: its message ids (a Deferred's bounds count these)."""
    return max(1, len(item[2]))


# Every ack of one app in a group commit in one statement: this device's
# delivery of this app's message goes from 0 to 2 (sent_at set if it was
# not). The (device, message_id) pairs come as JSON, each found through the
# message_id index and the deliveries primary key.
_ACK = (
    "UPDATE deliveries SET status = 2, acked_at = ?, modified_at = ?,"
    " sent_at = coalesce(sent_at, ?)"
    " WHERE (message_seq, device_id) IN (SELECT m.seq, json_extract(j.value, '$[0]')"
    " FROM json_each(?) j JOIN messages m"
    " ON m.message_id = json_extract(j.value, '$[1]') AND +m.app_id = ?)"
    " AND +app_id = ? AND status = 0"
    " RETURNING message_seq, device_id,"
    " (SELECT message_id FROM messages WHERE seq = deliveries.message_seq)"
)
# The message is Acked as soon as one of its deliveries is.
_ACK_MESSAGES = (
    "UPDATE messages SET status = 2, modified_at = ?"
    " WHERE seq IN (SELECT value FROM json_each(?)) AND status <> 2"
    " RETURNING created_at, push_type"
)


# The same for messages to one device, whose delivery is in their own row
# (d_state 0 to 2): one update of the message row, found through the
# message_id index. ?1 now, ?2 the (device, message_id) pairs as JSON, ?3 the app.
_ACK_FOLDED = (
    "UPDATE messages SET d_state = 2, status = 2, d_acked_at = ?1, modified_at = ?1,"
    " d_sent_at = coalesce(d_sent_at, ?1)"
    " WHERE (message_id, target_id) IN (SELECT json_extract(value, '$[1]'),"
    " json_extract(value, '$[0]') FROM json_each(?2)) AND +app_id = ?3 AND d_state = 0"
    " RETURNING target_id, message_id, created_at, push_type"
)


def write_acks(conn: sqlite3.Connection, items: list[AckItem]) -> list[int]:
    """Record every ack of the batch; per item, how many of its deliveries changed."""
    per_app: dict[str, tuple[list[list[str]], int]] = {}
    for app, device, ids, now, _ in items:
        entry = per_app.get(app)
        if entry is None:
            entry = per_app[app] = ([], now)
        entry[0].extend([device, message_id] for message_id in ids)
    changed: set[tuple[str, str, str]] = set()  # (app, device, message_id)
    for app, (pairs, now) in per_app.items():
        folded = conn.execute(_ACK_FOLDED, (now, json.dumps(pairs), app)).fetchall()
        stats.count_acked(conn, app, [(int(r[2]), str(r[3])) for r in folded])
        done = {(str(r[0]), str(r[1])) for r in folded}
        changed.update((app, device, message_id) for device, message_id in done)
        rest = [pair for pair in pairs if (pair[0], pair[1]) not in done]
        if not rest:  # every ack of a single-device message: no deliveries to look up
            continue
        rows = conn.execute(_ACK, (now, now, now, json.dumps(rest), app, app)).fetchall()
        if not rows:
            continue
        seqs = json.dumps(sorted({int(r[0]) for r in rows}))
        acked = conn.execute(_ACK_MESSAGES, (now, seqs)).fetchall()
        stats.count_acked(conn, app, [(int(r[0]), str(r[1])) for r in acked])
        changed.update((app, str(device), str(message_id)) for _, device, message_id in rows)
    counts: list[int] = []
    for app, device, ids, _, _ in items:
        mine = [(app, device, i) for i in dict.fromkeys(ids)]
        hits = [key for key in mine if key in changed]
        changed.difference_update(hits)  # each change is told to one item only
        counts.append(len(hits))
    return counts


def acks_done(items: list[AckItem], result: list[int] | None, error: BaseException | None) -> None:
    """On the Trio thread after the commit (or its failure): tell each ack's sender."""
    for k, (_, _, ids, _, done) in enumerate(items):
        if done is not None:
            done(ids, 0 if result is None else result[k], error)


# sent_at for many (device, message) pairs of one app in one statement: the
# pairs come as JSON, each found through the message_id index and the
# deliveries primary key (no scan however big the tables grow).
_MARK_SENT = (
    "UPDATE deliveries SET sent_at = ?"
    " WHERE (message_seq, device_id) IN (SELECT m.seq, json_extract(j.value, '$[0]')"
    " FROM json_each(?) j JOIN messages m"
    " ON m.message_id = json_extract(j.value, '$[1]') AND +m.app_id = ?)"
    " AND +app_id = ? AND sent_at IS NULL"
)


_MARK_SENT_FOLDED = (
    "UPDATE messages SET d_sent_at = ?1"
    " WHERE (message_id, target_id) IN (SELECT json_extract(value, '$[1]'),"
    " json_extract(value, '$[0]') FROM json_each(?2)) AND +app_id = ?3"
    " AND d_state IS NOT NULL AND d_sent_at IS NULL"
    " RETURNING target_id, message_id"
)


def write_sent(
    conn: sqlite3.Connection,
    items: list[SentItem],
    acked: set[tuple[str, str, str]] | frozenset[tuple[str, str, str]] = frozenset(),
) -> int:
    """sent_at for every written push (the first write wins).

    Pairs in `acked` (app, device, message_id) were acked in this same
    transaction, which set sent_at too: they cost nothing here. One
    statement per app and model; the time recorded is that of the batch's
    first write (the items of one group commit are milliseconds apart).
    """
    per_app: dict[str, tuple[list[tuple[str, str]], int]] = {}
    for app, device, ids, now in items:
        entry = per_app.get(app)
        if entry is None:
            entry = per_app[app] = ([], now)
        entry[0].extend(
            (device, message_id) for message_id in ids if (app, device, message_id) not in acked
        )
    changed = 0
    for app, (pairs, now) in per_app.items():
        if not pairs:
            continue
        folded = conn.execute(_MARK_SENT_FOLDED, (now, json.dumps(pairs), app)).fetchall()
        changed += len(folded)
        done = {(str(r[0]), str(r[1])) for r in folded}
        rest = [pair for pair in pairs if pair not in done]
        if rest:
            changed += conn.execute(_MARK_SENT, (now, json.dumps(rest), app, app)).rowcount
    return changed

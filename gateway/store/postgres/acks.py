"""Acks and sent marks: writes nobody waits for, all of one group commit at once.

As the SQLite store's deferred.py: the writer hands every ack (or sent mark)
taken for a group commit to one call, which writes them with one statement
per app: the (device, message_id) pairs go as two lists, each found through
the message_id index and the deliveries' primary key.

The lists go as text joined by newlines and split by PostgreSQL
(`string_to_array`), not as text[] parameters: psycopg builds array
parameters in Python, ~1.4 µs of the writer thread per pair, against 0.05.
A device or message ID never holds a newline (protocol.is_valid_id: no
whitespace or control characters); an acked "ID" that does (a device may send
any string) is no message's and is left out, so the split gives back exactly
the pairs joined.
"""

from __future__ import annotations

from collections import Counter

from ..deferred import AckItem, SentItem
from ..stats import DAY_MS
from .messages import add_counts
from .tx import Tx

_ACK = (
    "UPDATE deliveries d SET status = 2, acked_at = %s, modified_at = %s,"
    " sent_at = coalesce(d.sent_at, %s)"
    " FROM unnest(string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n'))"
    " AS p(device_id, message_id)"
    " JOIN messages m ON m.message_id = p.message_id AND m.app_id = %s"
    " WHERE d.message_seq = m.seq AND d.device_id = p.device_id AND d.status = 0"
    " RETURNING d.message_seq, d.device_id, m.message_id"
)
# The message is Acked as soon as one of its deliveries is; rows are locked in
# seq order, the same on every node.
_ACK_MESSAGES = (
    "UPDATE messages SET status = 2, modified_at = %s"
    " FROM (SELECT seq FROM messages WHERE seq = ANY(%s) AND status <> 2"
    " ORDER BY seq FOR UPDATE) s WHERE messages.seq = s.seq"
    " RETURNING messages.created_at, messages.push_type"
)


def _per_app(items: list[AckItem] | list[SentItem]) -> dict[str, tuple[str, str, int]]:
    """(devices, message_ids, now of the first item) of every app, in one pass; the
    devices and IDs each as one text, newline-separated (see above)."""
    per_app: dict[str, tuple[list[str], list[str], int]] = {}
    for item in items:
        app, device, ids, now = item[0], item[1], item[2], item[3]
        entry = per_app.get(app)
        if entry is None:
            entry = per_app[app] = ([], [], now)
        if "\n" in device:
            continue  # not a device ID: nothing of it can match
        if any("\n" in i for i in ids):
            ids = [i for i in ids if "\n" not in i]
        entry[0].extend([device] * len(ids))
        entry[1].extend(ids)
    return {app: ("\n".join(d), "\n".join(i), now) for app, (d, i, now) in per_app.items()}


def write_acks(tx: Tx, items: list[AckItem]) -> list[int]:
    """Record every ack of the batch; per item, how many of its deliveries changed."""
    conn = tx.conn
    changed: set[tuple[str, str, str]] = set()  # (app, device, message_id)
    for app, (devices, message_ids, now) in _per_app(items).items():
        rows = conn.execute(_ACK, (now, now, now, devices, message_ids, app)).fetchall()
        if not rows:
            continue
        seqs = sorted({int(r[0]) for r in rows})
        acked = conn.execute(_ACK_MESSAGES, (now, seqs)).fetchall()
        days = Counter(int(c) // DAY_MS for c, push_type in acked if push_type != "broadcast")
        add_counts(conn, {(app, day): (0, 0, n) for day, n in days.items()})
        changed.update((app, str(device), str(message_id)) for _, device, message_id in rows)
    counts: list[int] = []
    for app, device, ids, _, _ in items:
        hits = [key for key in ((app, device, i) for i in dict.fromkeys(ids)) if key in changed]
        changed.difference_update(hits)  # each change is told to one item only
        counts.append(len(hits))
    return counts


_MARK_SENT = (
    "UPDATE deliveries d SET sent_at = %s"
    " FROM unnest(string_to_array(%s, E'\\n'), string_to_array(%s, E'\\n'))"
    " AS p(device_id, message_id)"
    " JOIN messages m ON m.message_id = p.message_id AND m.app_id = %s"
    " WHERE d.message_seq = m.seq AND d.device_id = p.device_id AND d.sent_at IS NULL"
)


def write_sent(tx: Tx, items: list[SentItem]) -> int:
    """sent_at for every written push (the first write wins); the time recorded is
    that of the batch's first item of the app."""
    changed = 0
    for app, (devices, message_ids, now) in _per_app(items).items():
        changed += tx.conn.execute(_MARK_SENT, (now, devices, message_ids, app)).rowcount
    return changed

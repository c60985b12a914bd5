"""Storing pushes: every insert of one group commit in a few statements.

`insert_messages` takes all the pushes queued for one group commit at once:
one read finds every (target_id, msg_key) already kept, one finds the devices
of every user targeted, then all new messages go in with one INSERT over
arrays (`unnest`), all their deliveries with another, the day counts with a
third. Each push is still all or nothing: a push whose msg_key conflicts
gets its MsgKeyConflict and writes nothing, the others go on. If a statement
fails (another node stored the same msg_key a moment ago), the writer runs
each push alone in its own savepoint, which reads that row and answers
`duplicate`.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.ids import new_id

from ..queries import content_hash
from ..records import App, Message, MsgKeyConflict, NewMessage, PushOutcome
from ..stats import DAY_MS
from .locks import lock_users
from .rows import MSG_COLS, NO_BIND, PENDING, VERIFY_PENDING, WAITING, message_from_row
from .text import to_db
from .tx import Connection, Tx


@dataclass(frozen=True, slots=True)
class InsertOp:
    app: App
    items: Sequence[NewMessage]
    now: int
    kept_since: int  # a kept row created before this is past retention: stored anew


Key = tuple[str, str, str]  # (app_id, target_id, msg_key)


@dataclass(slots=True)
class _Plan:
    """What one push op writes, decided before anything is written."""

    outcomes: list[PushOutcome]
    rows: list[tuple[object, ...]]
    deliveries: list[tuple[int, str, str, int]]  # (seq, app_id, device_id, now)
    purged: list[int]
    keys: dict[Key, tuple[str, Message]]


def insert_messages(tx: Tx, ops: list[InsertOp]) -> list[list[PushOutcome] | BaseException]:
    conn = tx.conn
    kept = _kept_rows(conn, ops)
    users = _bound_devices(conn, ops)
    taken: dict[Key, tuple[str, Message]] = {}  # stored by an earlier op of this batch
    plans: list[_Plan | BaseException] = []
    for op in ops:
        try:
            plan = _plan(tx, op, kept, users, taken)
        except MsgKeyConflict as exc:
            plans.append(exc)
            continue
        taken.update(plan.keys)
        plans.append(plan)
    good = [p for p in plans if isinstance(p, _Plan)]
    purged = sorted({seq for p in good for seq in p.purged})
    if purged:
        conn.execute("DELETE FROM deliveries WHERE message_seq = ANY(%s)", (purged,))
        conn.execute("DELETE FROM messages WHERE seq = ANY(%s)", (purged,))
    _insert_rows(conn, [row for p in good for row in p.rows])
    insert_deliveries(conn, [d for p in good for d in p.deliveries])
    _count(conn, ops, plans)
    return [p.outcomes if isinstance(p, _Plan) else p for p in plans]


def _kept_rows(conn: Connection, ops: list[InsertOp]) -> dict[Key, tuple[str, Message]]:
    keys = sorted(
        {(op.app.app_id, i.target_id, i.msg_key) for op in ops for i in op.items if i.msg_key}
    )
    if not keys:
        return {}
    apps, targets, msg_keys = (list(c) for c in zip(*keys, strict=True))
    rows = conn.execute(
        f"SELECT {MSG_COLS}, content_hash FROM messages"
        " WHERE (app_id, target_id, msg_key) IN"
        " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
        (apps, targets, msg_keys),
    ).fetchall()
    return {(r[2], r[6], r[3]): (str(r[-1]), message_from_row(r)) for r in rows}


def _bound_devices(conn: Connection, ops: list[InsertOp]) -> dict[tuple[str, str], list[str]]:
    pairs = sorted(
        {
            (op.app.app_id, i.target_id)
            for op in ops
            if not op.app.verify
            for i in op.items
            if i.delivery_type == "user" and i.push_type != "broadcast"
        }
    )
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    if not pairs:
        return found
    lock_users(conn, pairs)  # a bind on another node commits before or after, never beside
    apps, users = (list(c) for c in zip(*pairs, strict=True))
    rows = conn.execute(
        "SELECT d.app_id, d.user_id, d.device_id FROM devices d"
        " JOIN unnest(%s::text[], %s::text[]) AS u(app_id, user_id)"
        " ON d.app_id = u.app_id AND d.user_id = u.user_id ORDER BY d.device_id",
        (apps, users),
    ).fetchall()
    for app_id, user_id, device_id in rows:
        found[(app_id, user_id)].append(device_id)
    return found


def _plan(
    tx: Tx,
    op: InsertOp,
    kept: dict[Key, tuple[str, Message]],
    users: dict[tuple[str, str], list[str]],
    taken: dict[Key, tuple[str, Message]],
) -> _Plan:
    app, now = op.app, op.now
    plan = _Plan([], [], [], [], {})
    for index, item in enumerate(op.items):
        digest = content_hash(item)
        key = (app.app_id, item.target_id, item.msg_key or "")
        if item.msg_key is not None:
            existing = plan.keys.get(key) or taken.get(key) or kept.get(key)
            if existing is not None and existing[1].created_at < op.kept_since:
                plan.purged.append(existing[1].seq)
            elif existing is not None:
                if existing[0] != digest:
                    raise MsgKeyConflict(item.target_id, item.msg_key, index)
                plan.outcomes.append(PushOutcome(existing[1], True, ()))
                continue
        seq = tx.seqs.next(tx.conn)
        message_id = new_id(now)
        msg_key = item.msg_key or message_id
        device_ids: list[str] = []
        if app.verify:
            status = WAITING  # no delivery until approved (verify())
        else:
            status, device_ids = first_targets(item, users.get((app.app_id, item.target_id), []))
        expires_at = now + item.expired_seconds * 1000
        verification = VERIFY_PENDING if app.verify else None
        plan.rows.append(
            (
                seq,
                message_id,
                app.app_id,
                msg_key,
                item.push_type,
                item.delivery_type,
                item.target_id,
                to_db(item.title),
                to_db(item.content),
                json.dumps(item.ext, ensure_ascii=False),
                item.template,
                item.platform,
                digest,
                now,
                expires_at,
                now,
                status,
                verification,
            )
        )
        plan.deliveries += [(seq, app.app_id, d, now) for d in device_ids]
        message = Message(
            seq=seq,
            message_id=message_id,
            app_id=app.app_id,
            msg_key=msg_key,
            push_type=item.push_type,
            delivery_type=item.delivery_type,
            target_id=item.target_id,
            title=item.title,
            content=item.content,
            ext=dict(item.ext),
            created_at=now,
            expires_at=expires_at,
            modified_at=now,
            status=status,
            verification=verification,
        )
        plan.outcomes.append(PushOutcome(message, False, tuple(device_ids)))
        if item.msg_key is not None:
            plan.keys[key] = (digest, message)
    return plan


def first_targets(item: NewMessage | Message, bound: list[str]) -> tuple[int, list[str]]:
    """A message entering the flow: its status and the devices it goes to now.

    A broadcast's deliveries are opened per device as devices are seen, so it
    starts with none; `bound` are the devices of a user-dimension target.
    """
    if item.push_type == "broadcast":
        return PENDING, []
    if item.delivery_type == "user":
        return (PENDING if bound else NO_BIND), list(bound)
    return PENDING, [item.target_id]


_COPY_MESSAGES = (
    "COPY messages (seq, message_id, app_id, msg_key, push_type, delivery_type,"
    " target_id, title, content, ext, template, platform, content_hash, created_at,"
    " expires_at, modified_at, status, verification) FROM STDIN"
)


def _insert_rows(conn: Connection, rows: list[tuple[object, ...]]) -> None:
    # COPY, not INSERT … unnest(arrays): psycopg formats COPY rows in C but builds
    # array parameters in Python: ~3.5 against ~21 µs of the writer thread per row
    # (1,000 rows; 36 against 84 µs for one). No ON CONFLICT is needed: the seqs
    # are new and a msg_key's older row is deleted first (_plan, `purged`).
    if rows:
        with conn.cursor().copy(_COPY_MESSAGES) as copy:
            for row in rows:
                copy.write_row(row)


def insert_deliveries(conn: Connection, rows: list[tuple[int, str, str, int]]) -> list[int]:
    """New pending deliveries (seq, app_id, device_id, now); one already there is kept
    as it is. Returns the seqs of those inserted."""
    if not rows:
        return []
    rows = sorted(rows)  # one lock order for every node: no deadlock between them
    seqs, apps, devices, nows = (list(c) for c in zip(*rows, strict=True))
    inserted = conn.execute(
        "INSERT INTO deliveries (message_seq, app_id, device_id, status, created_at, modified_at)"
        " SELECT s, a, d, 0, n, n FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[])"
        " AS r(s, a, d, n) ON CONFLICT DO NOTHING RETURNING message_seq",
        (seqs, apps, devices, nows),
    ).fetchall()
    return [int(r[0]) for r in inserted]


_ADD_COUNTS = (
    "INSERT INTO daily_counts (app_id, day, pushes, ackable, acked)"
    " SELECT * FROM unnest(%s::text[], %s::integer[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " ON CONFLICT (app_id, day) DO UPDATE SET pushes = daily_counts.pushes + excluded.pushes,"
    " ackable = daily_counts.ackable + excluded.ackable,"
    " acked = daily_counts.acked + excluded.acked"
)


def add_counts(conn: Connection, counts: dict[tuple[str, int], tuple[int, int, int]]) -> None:
    """Add (pushes, ackable, acked) to each (app_id, day) of the console's counters."""
    if not counts:
        return
    keys = sorted(counts)
    conn.execute(
        _ADD_COUNTS,
        (
            [k[0] for k in keys],
            [k[1] for k in keys],
            [counts[k][0] for k in keys],
            [counts[k][1] for k in keys],
            [counts[k][2] for k in keys],
        ),
    )


def _count(conn: Connection, ops: list[InsertOp], plans: list[_Plan | BaseException]) -> None:
    pushes: Counter[tuple[str, int]] = Counter()
    ackable: Counter[tuple[str, int]] = Counter()
    for op, plan in zip(ops, plans, strict=True):
        if isinstance(plan, _Plan):
            for outcome in plan.outcomes:
                if not outcome.duplicate:
                    key = (op.app.app_id, op.now // DAY_MS)
                    pushes[key] += 1
                    ackable[key] += outcome.message.push_type != "broadcast"
    add_counts(conn, {k: (pushes[k], ackable[k], 0) for k in pushes})

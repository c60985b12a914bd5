"""Per-user locks between nodes: a push to a user and a bind of that user.

On one node the writer runs one transaction at a time, so a push to a user
and a bind of that user are ordered. Two nodes' transactions are not: a push
reading the user's devices (none yet) and a bind attaching the user's waiting
messages (not this one: uncommitted) could both commit, leaving the message
NoBindInfo beside a bound device. So every transaction that reads or changes
who a user's devices are takes that user's transaction-level advisory lock
first, in key order; the next statement, with a snapshot taken after the
lock, sees what the other transaction committed.
"""

from __future__ import annotations

from collections.abc import Iterable

from .tx import Connection


def lock_users(conn: Connection, pairs: Iterable[tuple[str, str]]) -> None:
    """Take the locks of these (app_id, user_id) pairs, held until the transaction ends."""
    ordered = sorted(set(pairs))
    if not ordered:
        return
    conn.execute(
        # The key: a 64-bit hash of app and user (IDs never hold a newline).
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
        " hashtextextended(a || E'\\n' || u, 0) AS k"
        " FROM unnest(%s::text[], %s::text[]) AS p(a, u)) keys ORDER BY k",
        ([a for a, _ in ordered], [u for _, u in ordered]),
    )

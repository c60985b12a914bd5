"""Message seqs that a backlog cursor can never pass before they commit.

A device's backlog is read in pages after a cursor (`seq > after_seq`), so a
message that commits *after* a page was read must not have a seq below that
page's last one: the cursor would have passed it. A PostgreSQL sequence does
not give that: two nodes' transactions draw 10 and 11, and 11 may commit
first. What we do instead:

- A seq is `xid << 24 | n`: the writing transaction's 64-bit ID
  (`pg_current_xact_id()`), then a counter within the transaction (assigned
  by the writer, so a batch of messages and their deliveries is inserted in
  one statement with no RETURNING round trip). Transaction IDs are handed out
  in increasing order, so a transaction that starts after a snapshot writes
  seqs above every seq that snapshot shows.
- A page is read in one statement that also computes the *horizon*: the
  lowest transaction ID in progress in this database when its snapshot was
  taken (`pg_current_snapshot()`'s in-progress list; IDs of other databases'
  transactions are left out, so a long job elsewhere on the cluster never
  stalls a backlog). Every seq below `horizon << 24` that will ever commit is
  already visible. A row at or above it was committed by a transaction
  younger than one still running, which may yet commit lower seqs: a page
  holding such a row is read again a few milliseconds later (pages.py).

Within one node nothing ever waits: its writer runs one transaction at a
time, so its own commits are in seq order. Waits happen only while another
node's group commit is in flight, for about as long as that commit.
"""

from __future__ import annotations

from typing import Any

import psycopg

SEQ_BITS = 24  # messages per transaction: 16.7 M (a group commit holds at most 1 M)
MAX_PER_TRANSACTION = 1 << SEQ_BITS


class SeqAllocator:
    """The seqs of one writer transaction; `reset()` when it ends."""

    __slots__ = ("_base", "_next")

    def __init__(self) -> None:
        self._base: int | None = None
        self._next = 0

    def reset(self) -> None:
        self._base = None
        self._next = 0

    def next(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
        """A new seq, above every other of the open transaction (the first one asks
        PostgreSQL for the transaction's ID; the others are counted here)."""
        if self._base is None:
            row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
            assert row is not None
            self._base = int(row[0]) << SEQ_BITS
        if self._next >= MAX_PER_TRANSACTION:
            raise OverflowError("more messages in one transaction than seqs can number")
        self._next += 1
        return self._base + self._next - 1


# The horizon of the statement's own snapshot, as a seq: every seq below it that
# will ever commit is visible to the statement. An in-progress ID is left out only
# when pg_stat_activity shows it belongs to another database (matched on its low
# 32 bits, which pg_stat_activity shows); one that ends meanwhile is kept, which
# errs on the side of reading again.
HORIZON_SQL = f"""
SELECT coalesce(min(x.id), min(pg_snapshot_xmax(s.snap)::text::bigint)) << {SEQ_BITS}
FROM (SELECT pg_current_snapshot() AS snap) s
LEFT JOIN LATERAL (
    SELECT xip::text::bigint AS id FROM pg_snapshot_xip(s.snap) xip
) x ON x.id %% 4294967296 NOT IN (
    SELECT backend_xid::text::bigint FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
)
"""

"""What an operation of the writer gets: the connection and the open transaction's seqs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from .seqs import SeqAllocator

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass(slots=True)
class Tx:
    conn: Connection
    seqs: SeqAllocator = field(default_factory=SeqAllocator)

"""The PostgreSQL store: the Store interface for many nodes sharing one database."""

from .choose import StoreLocationError, store_for, store_problem, store_where
from .connect import describe, is_postgres_url
from .schema import SchemaTooNew
from .store import PostgresStore

__all__ = [
    "PostgresStore",
    "SchemaTooNew",
    "StoreLocationError",
    "describe",
    "is_postgres_url",
    "store_for",
    "store_problem",
    "store_where",
]

"""Which store a location names: a PostgreSQL URL or a SQLite file path."""

from __future__ import annotations

from gateway.clock import Clock

from ..records import StoreUnavailable
from ..sqlite import SqliteStore
from .connect import describe, is_postgres_url
from .schema import SchemaTooNew
from .store import PostgresStore


class StoreLocationError(ValueError):
    """A store location that is neither a SQLite file path nor a PostgreSQL URL."""


def store_for(
    location: str, *, clock: Clock | None = None, max_pages: int | None = None
) -> SqliteStore | PostgresStore:
    """`postgresql://…` (or `postgres://…`) is a PostgresStore; anything without a URL
    scheme is a SQLite file. ValueError, saying what is accepted, for anything else."""
    if is_postgres_url(location):
        if max_pages is not None:
            raise StoreLocationError("a page cap (max_db_pages) applies to a SQLite file only")
        return PostgresStore(location, clock=clock)
    scheme, sep, _ = location.partition("://")
    if sep and scheme.isidentifier():
        raise StoreLocationError(
            f"store {scheme}://…: not a store pushgate knows; give a SQLite file path"
            " or a postgresql:// URL"
        )
    return SqliteStore(location, clock=clock, max_pages=max_pages)


def store_problem(exc: BaseException) -> str | None:
    """One line saying why the store cannot be used at start (unreachable, a schema
    newer than the code, a bad location), found in `exc` or the groups around it;
    None if `exc` is something else."""
    if isinstance(exc, StoreUnavailable | SchemaTooNew | StoreLocationError):
        return f"cannot open the store: {exc}"
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (problem := store_problem(inner)) is not None:
                return problem
    return None


def store_where(location: str) -> str:
    """A store location as logs and messages may show it: never a URL's password."""
    return describe(location) if is_postgres_url(location) else location

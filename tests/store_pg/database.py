"""A PostgreSQL database of the test session's own, and a schema per store in it.

The session creates one fresh database on the test server (`PUSHGATE_TEST_PG`,
or the PostgreSQL URL in `PUSHGATE_TEST_STORE`; by default this machine's
127.0.0.1:5432 with trust auth) and drops it at the end (tests/conftest.py).
Each store a test opens gets a schema of its own there (its URL sets the
search_path), so tests never see each other's rows.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    store = os.environ.get("PUSHGATE_TEST_STORE", "")
    if store.startswith("postgresql://"):
        return store
    return os.environ.get("PUSHGATE_TEST_PG", DEFAULT_SERVER)


def with_database(url: str, dbname: str, *, schema: str | None = None) -> str:
    """`url` pointed at another database (and schema, through the search_path)."""
    parts = urlsplit(url)
    query = f"options={quote(f'-csearch_path={schema}', safe='')}" if schema else ""
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, query, ""))


class SessionDatabase:
    """Created on first use, dropped by `drop()` at the end of the session."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.name = f"pushgate_test_{os.getpid()}_{secrets.token_hex(4)}"
        self._created = False
        self._schemas: set[str] = set()

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.server, autocommit=True, connect_timeout=5)

    def url(self, schema: str) -> str:
        """The URL of a fresh (or this session's already made) schema `schema`."""
        if not self._created:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self._created = True
        if schema not in self._schemas:
            with psycopg.connect(with_database(self.server, self.name), autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self._schemas.add(schema)
        return with_database(self.server, self.name, schema=schema)

    def fresh_url(self) -> str:
        return self.url("s_" + secrets.token_hex(6))

    def drop(self) -> None:
        if self._created:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._created = False


_session: SessionDatabase | None = None


def session_database() -> SessionDatabase:
    global _session
    if _session is None:
        _session = SessionDatabase(server_url())
    return _session


def drop_session_database() -> None:
    if _session is not None:
        _session.drop()


def on_postgres() -> bool:
    """This run puts the gateway suites on PostgreSQL (the second pass of .ci/run)."""
    return os.environ.get("PUSHGATE_TEST_STORE", "").startswith("postgresql://")


def store_location(db: os.PathLike[str] | str) -> str:
    """Where a test's gateway keeps its state: the SQLite file `db`, or, in the
    PostgreSQL pass, a schema of its own named after that file (the same file
    path is the same schema, so a test can restart a gateway on its state)."""
    if not on_postgres():
        return str(db)
    digest = hashlib.sha256(os.fspath(db).encode()).hexdigest()[:16]
    return session_database().url(f"t_{digest}")

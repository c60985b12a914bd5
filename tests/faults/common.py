"""Shared bits of the fault tests: database checks, process probes, log checks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from tests.harness import ServerProcess

from .proxy import FaultProxy

# A request cut off by a dying server leaves httpx's body generator unexhausted.
HTTPX_CUT_OFF = (
    "ignore:Exception ignored in. <async_generator object ByteStream.__aiter__"
    ":pytest.PytestUnraisableExceptionWarning"
)
CRASH_MARKERS = ("session_crashed", "Traceback", "level=critical")


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def point_proxies(proxies: dict[str, FaultProxy], server: ServerProcess) -> None:
    """Aim the ws/tcp proxies at this server's listeners (new connections only)."""
    proxies["ws"].upstream = ("127.0.0.1", port_of(server.ws))
    proxies["tcp"].upstream = ("127.0.0.1", port_of(server.tcp))


def integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def stored_ids(db: Path) -> tuple[set[str], set[str]]:
    """(every message id in the file, ids with an acked delivery)."""
    conn = sqlite3.connect(db)
    try:
        stored = {r[0] for r in conn.execute("SELECT message_id FROM messages")}
        acked = {
            r[0]
            for r in conn.execute(
                "SELECT m.message_id FROM deliveries d JOIN messages m ON m.seq = d.message_seq"
                " WHERE d.status = 2"
                # a message to one device holds its delivery in its own row
                " UNION SELECT message_id FROM messages WHERE d_state = 2"
            )
        }
    finally:
        conn.close()
    return stored, acked


def database_bytes(db: Path) -> bytes:
    """The raw bytes of a SQLite file with its -wal and -shm companions."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def rss_kib(pid: int) -> int:
    """Resident memory of a process (Linux /proc), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def assert_clean_log(server: ServerProcess) -> None:
    text = server.log()
    for marker in CRASH_MARKERS:
        assert marker not in text, f"{marker!r} in the server log:\n{text[-3000:]}"

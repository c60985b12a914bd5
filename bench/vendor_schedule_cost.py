"""What the vendor fallback schedule costs a push on the SQLite store.

    .venv/bin/python -m bench.vendor_schedule_cost

Pushes to one device go through the store's insert function on one
connection, one push per call as the API's callers make them, in one
transaction per round; the figure is the thread's CPU per push (the best of
the rounds: the machine may be shared). Set-ups, each on its own file:

- before: `queries.insert_messages` alone (no vendor scheduling at all);
- trigger: the same with an AFTER INSERT trigger on `messages` that
  schedules routable pending rows (the design this measurement ruled out);
- explicit: `vendor_folded.insert_messages`, what the store runs, for an app
  without credentials (the common case);
- creds: the same for an app with credentials whose devices have no registration;
- routed: every device registered: every push gets a schedule row.

Another app has credentials and registrations of every device in each set-up.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence

from gateway.store import queries, vendor_folded
from gateway.store.records import App, NewMessage, PushOutcome
from gateway.store.schema import connect, migrate
from gateway.store.vendor_schema import folded_schedule_trigger

from .common import CONTENT, TITLE, device_name

SETUPS = ("before", "trigger", "explicit", "creds", "routed")
APP = App(app_id="bench", name="bench", secret="s", verify=False)
Insert = Callable[[sqlite3.Connection, App, Sequence[NewMessage], int, int], list[PushOutcome]]


def _prepare(conn: sqlite3.Connection, setup: str, devices: int) -> None:
    conn.execute("BEGIN")
    conn.execute("INSERT INTO apps VALUES ('bench', 'bench', 'hash', 's', 0, 0)")
    if setup == "trigger":
        conn.execute(folded_schedule_trigger("bench_schedule_on_insert", "AFTER INSERT"))
    with_channel = ["other"] + (["bench"] if setup in ("creds", "routed") else [])
    registered = ["other"] + (["bench"] if setup == "routed" else [])
    conn.executemany(
        "INSERT INTO channel_credentials VALUES (?, 'fcm', x'00', 0)", [(a,) for a in with_channel]
    )
    conn.executemany(
        "INSERT INTO vendor_registrations VALUES (?, ?, 'fcm', 'token', 0)",
        [(a, device_name(n)) for a in registered for n in range(devices)],
    )
    conn.execute("COMMIT")


def measure(
    setup: str, directory: str, pushes: int, devices: int, rounds: int
) -> tuple[float, int]:
    """CPU µs per push, and the schedule rows made."""
    conn = connect(os.path.join(directory, f"{setup}.db"))
    try:
        migrate(conn)
        _prepare(conn, setup, devices)
        insert: Insert = (
            queries.insert_messages
            if setup in ("before", "trigger")
            else vendor_folded.insert_messages
        )
        best = float("inf")
        for r in range(rounds):
            items = [
                NewMessage(
                    "simple", "android", device_name(i % devices), TITLE, f"{CONTENT} {r} {i}"
                )
                for i in range(pushes)
            ]
            conn.execute("BEGIN")
            started = time.thread_time()
            for i, item in enumerate(items):
                insert(conn, APP, [item], 1_700_000_000_000 + r * pushes + i, 0)
            best = min(best, time.thread_time() - started)
            conn.execute("COMMIT")
        scheduled = int(conn.execute("SELECT count(*) FROM vendor_fallbacks").fetchone()[0])
        return best / pushes * 1e6, scheduled
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vendor_schedule_cost", description=__doc__
    )
    parser.add_argument("--pushes", type=int, default=5000, help="per round")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("setups", nargs="*", help=f"of {', '.join(SETUPS)}; all when none is named")
    args = parser.parse_args(argv)
    unknown = set(args.setups) - set(SETUPS)
    if unknown:
        parser.error(f"unknown set-up(s): {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="vendor-schedule-") as tmp:
        for setup in args.setups or SETUPS:
            us, scheduled = measure(setup, tmp, args.pushes, args.devices, args.rounds)
            print(f"{setup:<9} {us:6.1f} µs CPU per push   schedule rows {scheduled}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

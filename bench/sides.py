"""The servers under test, each with its device workers and its publishers.

A side starts its server in a fresh directory, starts one device worker per
share of the devices (each on its own source address 127.0.0.x) and one
publisher (pushgate: several, for the simple-push phase), and knows how to
publish and, for pushgate, how to check that every ack is stored.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from .common import API_KEY, APP_ID, SECRET, Share
from .control import REPO_ROOT, Helper, HelperFailed
from .machine import MOSQUITTO, pids_named

NODE_RESERVED_FDS = 200  # a node's own descriptors: listeners, PostgreSQL, Redis, files


def source_address(worker: int) -> str:
    return f"127.0.0.{11 + worker}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _drain(stream: IO[bytes], log: IO[bytes]) -> None:
    for line in stream:
        log.write(line)
        log.flush()


class Side:
    name = ""
    server: subprocess.Popen[bytes]
    workers: list[Helper]
    publishers: list[Helper]

    def __init__(self, workdir: Path, log_dir: Path, devices: int) -> None:
        self.workdir = workdir
        self.log_dir = log_dir
        self.devices = devices
        self.workers = []
        self.publishers = []
        self._server_log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.server.pid

    def server_pids(self) -> list[int]:
        """Every process of the server under test (several nodes: each one)."""
        return [self.server.pid]

    def engine_pids(self) -> list[int]:
        """Processes of the engines the server runs on (a PostgreSQL store, a Redis broker)."""
        return []

    def start(self, shares: list[Share], concurrency: int) -> None:
        raise NotImplementedError

    def publish(
        self, start: int, count: int, rate: float, *, simple_concurrency: int = 0
    ) -> dict[str, Any]:
        """Publish messages [start, start + count) at `rate` per second (0: flat out).

        `simple_concurrency` > 0: one message per API call, that many calls in
        flight (pushgate's `/v1/push/simple`; MQTT publishes are one message
        each anyway)."""
        raise NotImplementedError

    def mark(self) -> int:
        """A position before a phase, for `wait_stored` (pushgate only)."""
        return 0

    def wait_stored(self, mark: int, count: int, timeout: float) -> int | None:
        """ns when `count` acks after `mark` are stored; None if not checked here."""
        return None

    def server_alive(self) -> None:
        if self.server.poll() is not None:
            raise HelperFailed(
                f"{self.name} server exited with {self.server.returncode}{self.server_tail()}"
            )

    def server_tail(self) -> str:
        path = self.log_dir / f"{self.name}-server.log"
        try:
            lines = path.read_text(errors="replace").splitlines()[-15:]
        except OSError:
            return ""
        return ("\n  " + "\n  ".join(lines)) if lines else ""

    def stop(self) -> None:
        for helper in [*self.workers, *self.publishers]:
            helper.stop()
        server = getattr(self, "server", None)
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        if self._server_log is not None:
            self._server_log.close()
        postgres = getattr(self, "postgres", None)
        if postgres is not None:
            postgres.drop()
        broker = getattr(self, "broker", None)
        if broker is not None:
            broker.drop()


class PushgateSide(Side):
    """`pushgate serve` on a fresh SQLite file, or on a fresh database of the PostgreSQL
    server `store` (created at start, dropped at stop); devices over WebSocket or TCP.

    `nodes` > 0 (PostgreSQL only): that many nodes on the same ports with a Redis
    broker (`serve --workers N --broker URL`, a fresh key prefix), as the README's
    "Running many nodes" runs them on one machine; the kernel spreads devices and
    API calls over the nodes, and a push reaches a device on another node through
    the broker."""

    def __init__(
        self,
        workdir: Path,
        log_dir: Path,
        devices: int,
        *,
        transport: str,
        simple_publishers: int,
        store: str = "sqlite",
        nodes: int = 0,
        broker: str = "",
    ) -> None:
        super().__init__(workdir, log_dir, devices)
        self.postgres = FreshDatabase(store) if store != "sqlite" else None
        self.name = f"pushgate-{transport}" + ("-pg" if self.postgres else "")
        self.nodes = nodes
        self.broker = FreshPrefix(broker) if nodes else None
        if nodes:
            if self.postgres is None:
                raise ValueError("nodes need a PostgreSQL store")
            self.name += f"-{nodes}node" + ("s" if nodes > 1 else "")
        self.node_pids: list[int] = []
        self.transport = transport
        self.simple_publishers = max(1, simple_publishers)
        self.db = workdir / "pushgate.db"
        self.api = ""
        self.multiple = False

    def _serve_args(self) -> list[str]:
        location = self.postgres.create() if self.postgres else str(self.db)
        args = [sys.executable, "-m", "gateway.cli", "serve", "--db", location]
        args += ["--api-port", "0", "--ws-port", "0", "--tcp-port", "0"]
        args += ["--app", f"{APP_ID}:{API_KEY}:{SECRET}", "--heartbeat", "3600"]
        args += ["--log-level", os.environ.get("PUSHGATE_BENCH_LOG_LEVEL", "warning")]
        if self.broker is not None:
            args += ["--broker", self.broker.url, "--broker-prefix", self.broker.prefix]
            args += ["--workers", str(self.nodes)]
            # The kernel spreads devices unevenly over the nodes: let each hold what its
            # descriptors allow (the default, 19,000, is for one node holding them all).
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            args += ["--max-connections", str(max(1000, soft - NODE_RESERVED_FDS))]
        helptext = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "serve", "--help"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        ).stdout
        if "--rate-limit" in helptext:
            args += ["--rate-limit", "0"]  # the benchmark is one app pushing flat out
        return args

    def start(self, shares: list[Share], concurrency: int) -> None:
        self._server_log = (self.log_dir / f"{self.name}-server.log").open("wb")
        self.server = subprocess.Popen(
            self._serve_args(),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=self._server_log,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        assert self.server.stdout is not None
        found: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(found) < 3:
            line = self.server.stdout.readline()
            if not line or time.monotonic() > deadline:
                self.server_alive()
                raise HelperFailed(f"pushgate did not print its addresses{self.server_tail()}")
            key, _, value = line.decode().strip().partition("=")
            if key in ("api", "ws", "tcp"):
                found[key] = value
        threading.Thread(
            target=_drain, args=(self.server.stdout, self._server_log), daemon=True
        ).start()
        self.api = found["api"]
        if self.nodes:
            self.node_pids = self._wait_nodes(60.0)
        url = found["ws"] + "/v1/connect" if self.transport == "ws" else found["tcp"]
        for w, share in enumerate(shares):
            args = ["--url", url, "--first", str(share.first), "--count", str(share.count)]
            args += ["--source", source_address(w), "--concurrency", str(concurrency)]
            self.workers.append(
                Helper(f"{self.name}-devices-{w}", "bench.pushgate_devices", args, self.log_dir)
            )
        # One publisher for the batched pushes; the simple-push phase spreads
        # its calls over all of them (one HTTP call per message costs the
        # client more than a batch: one process could saturate first).
        for k in range(self.simple_publishers):
            self.publishers.append(
                Helper(
                    f"{self.name}-publisher-{k}",
                    "bench.http_pusher",
                    ["--api", self.api, "--devices", str(self.devices)],
                    self.log_dir,
                )
            )
        for publisher in self.publishers:
            publisher.expect("ready", 60)
            publisher.send("probe")
            self.multiple = bool(publisher.expect("probed", 60)["multiple"])

    def _live_nodes(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(
            self.api + "/v1/nodes", headers={"authorization": f"Bearer {API_KEY}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return list(json.loads(answer.read())["nodes"])

    def _wait_nodes(self, timeout: float) -> list[int]:
        """PIDs of the nodes, once all of them are live (listed by `GET /v1/nodes`)."""
        deadline = time.monotonic() + timeout
        while True:
            self.server_alive()
            try:
                nodes = self._live_nodes()
            except OSError:
                nodes = []
            if len(nodes) >= self.nodes:
                return sorted(int(n["pid"]) for n in nodes)
            if time.monotonic() > deadline:
                raise HelperFailed(f"{len(nodes)} of {self.nodes} nodes live{self.server_tail()}")
            time.sleep(0.1)

    def devices_per_node(self) -> list[int]:
        """Devices online on each node (several nodes only)."""
        return sorted((int(n["online"]) for n in self._live_nodes()), reverse=True)

    def server_pids(self) -> list[int]:
        return [self.server.pid, *self.node_pids]

    def engine_pids(self) -> list[int]:
        names = ["postgres"] if self.postgres is not None else []
        if self.broker is not None:
            names.append("redis-server")
        return pids_named(*names) if names else []

    def publish(
        self, start: int, count: int, rate: float, *, simple_concurrency: int = 0
    ) -> dict[str, Any]:
        api = "multiple"
        if simple_concurrency > 0:
            batch, concurrency, api = 1, simple_concurrency, "simple"
        elif rate > 0:
            # Small calls at a steady pace: about one call every 10 ms.
            batch, concurrency = max(1, min(1000, int(rate / 100))), 8
        else:
            batch, concurrency = 1000, 4
        if not self.multiple and not simple_concurrency:
            concurrency = 16 if rate > 0 else 64
        helpers = self.publishers if api == "simple" else self.publishers[:1]
        per, extra = divmod(count, len(helpers))
        first = start
        for k, helper in enumerate(helpers):
            n = per + (1 if k < extra else 0)
            helper.send(
                "publish",
                start=first,
                count=n,
                rate=rate / len(helpers),
                batch=batch,
                concurrency=max(1, concurrency // len(helpers)),
                api=api,
            )
            first += n
        results = [h.expect("published", max(120.0, count / 200)) for h in helpers]
        for result in results:
            if "failed" in result:
                raise HelperFailed(f"pushgate publisher failed: {result['failed']}")
        merged = dict(results[0])
        merged["count"] = count
        merged["processes"] = len(helpers)
        merged["concurrency"] = max(1, concurrency // len(helpers)) * len(helpers)
        for key in ("stored", "errors", "retries"):
            merged[key] = sum(r[key] for r in results)
        merged["seconds"] = max(r["seconds"] for r in results)
        return merged

    def _scalar(self, sql: str, *args: int) -> int:
        """One number read from the store (`?` placeholders), read-only."""
        if self.postgres is not None:
            with psycopg.connect(self.postgres.create()) as pg:
                row = pg.execute(sql.replace("?", "%s"), args).fetchone()
            return int(row[0]) if row else 0
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return int(conn.execute(sql, args).fetchone()[0])
        finally:
            conn.close()

    def mark(self) -> int:
        return self._scalar("SELECT coalesce(max(seq), 0) FROM messages")

    def stored_acks(self, mark: int) -> int:
        if self.postgres is not None:
            return self._scalar(
                "SELECT count(*) FROM deliveries WHERE message_seq > ? AND status = 2", mark
            )
        # SQLite: a message to one device holds its delivery in its row (docs/data-model.md).
        return self._scalar(
            "SELECT (SELECT count(*) FROM deliveries WHERE message_seq > ? AND status = 2)"
            " + (SELECT count(*) FROM messages WHERE seq > ? AND d_state = 2)",
            mark,
            mark,
        )

    def wait_stored(self, mark: int, count: int, timeout: float) -> int | None:
        # The server may still be working through acks the devices wrote long
        # ago: wait as long as the count moves, and `timeout` after it stops.
        deadline = time.monotonic() + timeout
        last = -1
        while True:
            stored = self.stored_acks(mark)
            if stored >= count:
                return time.time_ns()
            if stored != last:
                last, deadline = stored, time.monotonic() + timeout
            if time.monotonic() > deadline:
                raise HelperFailed(
                    f"pushgate stored {stored} acks of {count}, none more in {timeout:.0f}s"
                )
            time.sleep(0.02)


class FreshDatabase:
    """A database of its own on a PostgreSQL server, for one side's run."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.name = f"pushgate_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self.created = False

    def create(self) -> str:
        """Create it (once); its URL."""
        parts = urlsplit(self.server)
        if not self.created:
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        return urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))

    def drop(self) -> None:
        if self.created:
            with psycopg.connect(self.server, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False


class FreshPrefix:
    """A key prefix of its own on a Redis server, for one side's run (keys deleted at stop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"pushgate-bench-{os.getpid()}-{secrets.token_hex(3)}:"

    def drop(self) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            return  # the keys of a stopped node expire by themselves (TTLs)
        parts = urlsplit(self.url)
        where = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        where += ["-n", parts.path.lstrip("/") or "0"]
        keys = subprocess.run(
            [cli, *where, "--scan", "--pattern", self.prefix + "*"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for k in range(0, len(keys), 500):
            subprocess.run([cli, *where, "del", *keys[k : k + 500]], capture_output=True)


class MosquittoSide(Side):
    """Our own mosquitto on a free port: MQTT 3.1.1, persistent sessions, QoS 1."""

    name = "mosquitto"

    def __init__(self, workdir: Path, log_dir: Path, devices: int) -> None:
        super().__init__(workdir, log_dir, devices)
        self.port = 0

    def config(self) -> str:
        data = self.workdir / "mosquitto"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "max_connections -1",
            "set_tcp_nodelay true",  # pushgate sets TCP_NODELAY too
            # Persistence as close to pushgate's as mosquitto goes: mosquitto
            # keeps its state in memory and snapshots the whole of it to disk,
            # here every second (pushgate commits every change before
            # answering, with fsync).
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1",
            # Offline devices keep every message, and a reconnecting device
            # gets its whole backlog without waiting for PUBACKs, as
            # pushgate sends its whole backlog: no per-client limits.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # keep root: the persistence directory is ours
        return "\n".join(lines) + "\n"

    def start(self, shares: list[Share], concurrency: int) -> None:
        ensure_mosquitto()
        self.port = free_port()
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config())
        self._server_log = (self.log_dir / "mosquitto-server.log").open("wb")
        self.server = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)],
            stdout=self._server_log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            self.server_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise HelperFailed(f"mosquitto did not listen{self.server_tail()}") from None
                time.sleep(0.05)
        for w, share in enumerate(shares):
            args = ["--port", str(self.port), "--first", str(share.first)]
            args += ["--count", str(share.count), "--source", source_address(w)]
            args += ["--concurrency", str(concurrency)]
            self.workers.append(
                Helper(f"mosquitto-devices-{w}", "bench.mqtt_devices", args, self.log_dir)
            )
        publisher = Helper(
            "mosquitto-publisher",
            "bench.mqtt_publisher",
            ["--port", str(self.port), "--devices", str(self.devices)],
            self.log_dir,
        )
        self.publishers.append(publisher)
        publisher.expect("ready", 60)

    def publish(
        self, start: int, count: int, rate: float, *, simple_concurrency: int = 0
    ) -> dict[str, Any]:
        publisher = self.publishers[0]
        publisher.send("publish", start=start, count=count, rate=rate)
        result = publisher.expect("published", max(120.0, count / 200))
        if "failed" in result:
            raise HelperFailed(f"mosquitto publisher failed: {result['failed']}")
        if result["errors"]:
            raise HelperFailed(f"mosquitto did not PUBACK {result['errors']} messages")
        return result


def ensure_mosquitto() -> None:
    """Install Debian's mosquitto if the machine has none."""
    if os.path.exists(MOSQUITTO):
        return
    if shutil.which("apt-get") is None:
        raise HelperFailed(f"{MOSQUITTO} is missing and there is no apt-get to install it")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "mosquitto"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0 and cmd[1] == "install":
            raise HelperFailed(
                f"could not install mosquitto ({' '.join(cmd)} exited {done.returncode}):\n"
                + (done.stdout + done.stderr)[-2000:]
            )
    if not os.path.exists(MOSQUITTO):
        raise HelperFailed(f"apt-get install mosquitto left no {MOSQUITTO}")

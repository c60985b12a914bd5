"""Publisher, pushgate side: pushes through the real HTTP API.

    python -m bench.http_pusher --api http://127.0.0.1:PORT --devices 5000

`publish {start, count, rate, batch, concurrency, api}`: message i goes to
device `i % devices`. With `POST /v1/push/multiple` available (and `api` not
"simple"), one call carries up to `batch` targets (CONTRACT.md §4 allows
1000); otherwise every message is one `POST /v1/push/simple`. Calls go out
on `concurrency` keep-alive connections (a small h11 client: httpx would cost
more CPU than the gateway's own handler); each carries the time it was made
in `ext`. Answers `published` once every call has answered 200, i.e. every
message is durably stored.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

import h11
import trio

from .common import API_KEY, CONTENT, SENT_KEY, TITLE, device_name, now_ns
from .control import answer, stdin_commands

REQUEST_TIMEOUT = 300.0
# A keep-alive connection idle this long is replaced before reuse: the
# server (hypercorn: 5 s) may be closing it just as our request arrives, and a
# push cannot be retried blindly (it is not idempotent without a msg_key).
MAX_IDLE = 2.0


class HttpConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.stream: trio.SocketStream | None = None
        self.conn = h11.Connection(h11.CLIENT)
        self.last_used = 0.0
        self.requests = 0

    async def request(self, path: str, body: bytes) -> tuple[int, bytes]:
        with trio.fail_after(REQUEST_TIMEOUT):
            return await self._request(path, body)

    async def _request(self, path: str, body: bytes) -> tuple[int, bytes]:
        idle = trio.current_time() - self.last_used
        if self.stream is None or self.conn.our_state is not h11.IDLE or idle > MAX_IDLE:
            if self.stream is not None:
                await self.stream.aclose()
            self.stream = await trio.open_tcp_stream(self.host, self.port)
            self.conn = h11.Connection(h11.CLIENT)
            self.requests = 0
        self.requests += 1
        conn = self.conn
        headers = [
            ("host", f"{self.host}:{self.port}"),
            ("authorization", f"Bearer {API_KEY}"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ]
        data = conn.send(h11.Request(method="POST", target=path, headers=headers))
        data += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        status = 0
        chunks: list[bytes] = []
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise OSError(
                    f"{path}: {exc} (request {self.requests} on this connection, which had"
                    f" been idle {idle:.1f} s)"
                ) from None
            if event is h11.NEED_DATA:
                conn.receive_data(await self.stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise OSError("server closed the connection")
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        self.last_used = trio.current_time()
        return status, b"".join(chunks)

    async def aclose(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()


class Pusher:
    def __init__(self, args: argparse.Namespace) -> None:
        parts = urlsplit(args.api)
        assert parts.hostname
        assert parts.port
        self.host, self.port = parts.hostname, parts.port
        self.devices = args.devices
        self.multiple: bool | None = None
        self.retries = 0

    async def probe(self) -> bool:
        """Is `POST /v1/push/multiple` there? (404/405: not yet.)"""
        conn = HttpConnection(self.host, self.port)
        body = json.dumps(
            {"delivery_type": "android", "targets": [], "title": TITLE, "content": CONTENT}
        )
        status, _ = await conn.request("/v1/push/multiple", body.encode())
        await conn.aclose()
        self.multiple = status not in (404, 405)
        return self.multiple

    def body(self, start: int, count: int, multiple: bool) -> tuple[str, bytes]:
        ext = {SENT_KEY: str(now_ns())}
        common = {"delivery_type": "android", "title": TITLE, "content": CONTENT, "ext": ext}
        if multiple:
            targets = [
                {"target_id": device_name(i % self.devices)} for i in range(start, start + count)
            ]
            return "/v1/push/multiple", json.dumps({**common, "targets": targets}).encode()
        assert count == 1
        return "/v1/push/simple", json.dumps(
            {**common, "target_id": device_name(start % self.devices)}
        ).encode()

    async def call(self, conn: HttpConnection, start: int, count: int, multiple: bool) -> int:
        """One push call; returns the number of messages it stored."""
        for _attempt in range(100):
            path, body = self.body(start, count, multiple)
            status, answer_body = await conn.request(path, body)
            if status == 429:  # rate limited: the API asks us to come back
                self.retries += 1
                await trio.sleep(0.05)
                continue
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}: {answer_body[:300]!r}")
            if multiple:
                stored = len(json.loads(answer_body)["messages"])
                if stored != count:
                    raise RuntimeError(f"{path}: {stored} messages stored of {count}")
            return count
        raise RuntimeError("still rate limited after 100 tries")

    async def publish(
        self, start: int, count: int, rate: float, batch: int, concurrency: int, api: str
    ) -> dict[str, Any]:
        if self.multiple is None:
            await self.probe()
        multiple = bool(self.multiple) and api != "simple"
        if not multiple:
            batch = 1
        batch = max(1, min(batch, 1000, self.devices))
        self.retries = 0
        send, receive = trio.open_memory_channel[tuple[int, int]](concurrency * 2)
        stored = 0
        started_ns = now_ns()
        t0 = trio.current_time()

        async def feeder() -> None:
            async with send:
                for k, first in enumerate(range(start, start + count, batch)):
                    if rate > 0:
                        await trio.sleep_until(t0 + k * batch / rate)
                    await send.send((first, min(batch, start + count - first)))

        async def caller() -> None:
            nonlocal stored
            conn = HttpConnection(self.host, self.port)
            try:
                async for first, n in receive:
                    done = await self.call(conn, first, n, multiple)
                    stored += done
            finally:
                await conn.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feeder)
            for _ in range(concurrency):
                nursery.start_soon(caller)
        return {
            "count": count,
            "stored": stored,
            "started_ns": started_ns,
            "seconds": trio.current_time() - t0,
            "errors": count - stored,
            "retries": self.retries,
            "api": "multiple" if multiple else "simple",
            "batch": batch,
        }

    async def run(self) -> None:
        answer("ready")
        async with aclosing(stdin_commands()) as commands:
            async for command in commands:
                if command["cmd"] == "probe":
                    answer("probed", multiple=await self.probe())
                elif command["cmd"] == "publish":
                    started = time.monotonic()
                    try:
                        result = await self.publish(
                            command["start"],
                            command["count"],
                            command["rate"],
                            command.get("batch", 1000),
                            command.get("concurrency", 4),
                            command.get("api", "multiple"),
                        )
                    except Exception as exc:  # an ExceptionGroup from the callers too
                        result = {"failed": repr(exc)[:500], "seconds": time.monotonic() - started}
                    answer("published", **result)
                elif command["cmd"] == "quit":
                    return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", required=True)
    parser.add_argument("--devices", type=int, required=True)
    trio.run(Pusher(parser.parse_args()).run)


if __name__ == "__main__":
    main()

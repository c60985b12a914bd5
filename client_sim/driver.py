"""`PushDriver`: pushes through the gateway's real HTTP API, at a rate or flat out.

    async with PushDriver.open(API, API_KEY, on_accepted=oracle.accept) as driver:
        await driver.bind("user-1", "phone-1")
        jobs = (PushJob.device(f"phone-{i % 100}") for i in range(10_000))
        await driver.run(jobs, rate=500, concurrency=32)

Each `PushJob` is one request: a simple push to a device or a user, a
`multiple` push to up to 1000 devices, or a broadcast. Every message the
gateway accepts is reported to `on_accepted` as an `AcceptedPush` with the
devices that must receive it, for the oracle.

Requests carry a `msg_key` unique to the run, so a request retried after a
transport error (the gateway may have stored it) is answered with the same
message (`"duplicate": true`) instead of creating a second one. 429 answers
wait for `Retry-After`; 5xx and transport errors are retried `max_retries`
times with a short backoff; other errors are counted in `stats.rejected`.
"""

from __future__ import annotations

import math
import secrets
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import trio

from .oracle import AcceptedPush, LatencyStats
from .received import wall_ms

JobKind = Literal["device", "user", "multiple", "broadcast"]
MAX_MULTIPLE_TARGETS = 1000
MAX_RETRY_AFTER = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PushJob:
    """One API request's worth of messages."""

    kind: JobKind
    targets: tuple[str, ...] = ()  # device ids, or one user id; empty for a broadcast
    expected: tuple[frozenset[str], ...] = ()  # the devices each target must reach
    delivery_type: str = "android"  # android / ios for device targets
    platform: str | None = None  # a broadcast's platform filter

    @classmethod
    def device(cls, device_id: str, *, platform: str = "android") -> PushJob:
        """A simple push to one device."""
        return cls(
            kind="device",
            targets=(device_id,),
            expected=(frozenset({device_id}),),
            delivery_type=platform,
        )

    @classmethod
    def user(cls, user_id: str, devices: Iterable[str]) -> PushJob:
        """A simple push to a user; `devices` are the ones bound to it."""
        return cls(
            kind="user", targets=(user_id,), expected=(frozenset(devices),), delivery_type="user"
        )

    @classmethod
    def multiple(cls, device_ids: Iterable[str], *, platform: str = "android") -> PushJob:
        """A `multiple` push to these devices (at most 1000, no repeats)."""
        targets = tuple(device_ids)
        if not 1 <= len(targets) <= MAX_MULTIPLE_TARGETS or len(set(targets)) != len(targets):
            raise ValueError(f"1 to {MAX_MULTIPLE_TARGETS} distinct targets per multiple push")
        return cls(
            kind="multiple",
            targets=targets,
            expected=tuple(frozenset({t}) for t in targets),
            delivery_type=platform,
        )

    @classmethod
    def broadcast(cls, devices: Iterable[str], *, platform: str | None = None) -> PushJob:
        """A broadcast; `devices` are the fleet's devices it must reach."""
        return cls(kind="broadcast", expected=(frozenset(devices),), platform=platform)

    @property
    def messages(self) -> int:
        """How many messages (message ids) the request creates."""
        return len(self.targets) if self.kind == "multiple" else 1


@dataclass(slots=True)
class DriverStats:
    requests: int = 0  # requests answered 200
    messages: int = 0  # messages accepted
    duplicates: int = 0  # answers flagged "duplicate": a retry found its message stored
    statuses: Counter[int] = field(default_factory=Counter)  # message status in the answers
    rejected: Counter[str] = field(default_factory=Counter)  # "409 msg_key_conflict" -> n
    failed: Counter[str] = field(default_factory=Counter)  # gave up after retries
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    bindings: int = 0
    api_latencies: list[int] = field(default_factory=list)  # ms per answered request

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "messages": self.messages,
            "duplicates": self.duplicates,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "rejected": dict(self.rejected),
            "failed": dict(self.failed),
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "bindings": self.bindings,
            "api_latency": _latency_dict(self.api_latencies),
        }


def _latency_dict(samples: list[int]) -> dict[str, Any]:
    stats = LatencyStats.of(samples)
    return {name: getattr(stats, name) for name in stats.__slots__}


class ApiError(Exception):
    """A request the driver could not get accepted (it is counted in the stats too)."""


class PushDriver:
    """Pushes through the HTTP API; see the module docstring."""

    def __init__(
        self,
        clients: Sequence[httpx.AsyncClient],
        *,
        on_accepted: Callable[[AcceptedPush], None] | None = None,
        expired_seconds: int = 3600,
        max_retries: int = 3,
        run_id: str | None = None,
        title: str = "sim",
        content: str = "pushgate simulator",
    ) -> None:
        if not clients:
            raise ValueError("a driver needs at least one HTTP client")
        self.clients = list(clients)
        # A pool of clients: a request leases one, so at most len(clients)
        # requests are in flight.
        self._free_send, self._free = trio.open_memory_channel[httpx.AsyncClient](len(clients))
        for client in self.clients:
            self._free_send.send_nowait(client)
        self.on_accepted = on_accepted
        self.expired_seconds = expired_seconds
        self.max_retries = max_retries
        self.run_id = run_id or secrets.token_hex(4)
        self.title = title
        self.content = content
        self.stats = DriverStats()
        self.sent_messages = 0  # messages handed to requests so far (for progress)
        self._seq = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        api: str,
        api_key: str,
        *,
        concurrency: int = 32,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> AsyncIterator[PushDriver]:
        """A driver with `concurrency` HTTP clients of one keep-alive connection each.

        One client per connection, rather than one client with a pool of
        `concurrency` connections: httpx's pool scans every connection for every
        request, which costs more CPU than the request itself at 32+ connections.
        """
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        # One TLS context for all: loading the CA store costs ~20 ms per client.
        tls = ssl.create_default_context()
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=api,
                        headers={"authorization": f"Bearer {api_key}"},
                        timeout=timeout,
                        limits=limits,
                        verify=tls,
                    )
                )
                for _ in range(concurrency)
            ]
            yield cls(clients, **kwargs)

    # --- single requests ------------------------------------------------------------

    async def send(self, job: PushJob) -> list[AcceptedPush]:
        """Send one job's request; returns the messages accepted (empty if rejected)."""
        self.sent_messages += job.messages
        keys = [self._next_key() for _ in range(job.messages)]
        common = {"expired_seconds": self.expired_seconds}
        body: dict[str, Any]
        if job.kind in ("device", "user"):
            path = "/v1/push/simple"
            body = {
                **common,
                "delivery_type": job.delivery_type,
                "target_id": job.targets[0],
                "title": self.title,
                "content": self.content,
                "msg_key": keys[0],
            }
        elif job.kind == "multiple":
            path = "/v1/push/multiple"
            body = {
                **common,
                "delivery_type": job.delivery_type,
                "title": self.title,
                "content": self.content,
                "targets": [
                    {"target_id": t, "msg_key": k} for t, k in zip(job.targets, keys, strict=True)
                ],
            }
        else:
            path = "/v1/push/broadcast"
            body = {**common, "title": self.title, "content": self.content, "msg_key": keys[0]}
            if job.platform is not None:
                body["platform"] = job.platform
        pushed_ms = wall_ms()
        answer = await self._post(path, body)
        if answer is None:
            return []
        accepted_ms = wall_ms()
        self.stats.requests += 1
        items = answer.get("messages") if job.kind == "multiple" else [answer]
        if not isinstance(items, list) or len(items) != job.messages:
            self.stats.rejected["malformed answer"] += 1
            return []
        accepted: list[AcceptedPush] = []
        for i, item in enumerate(items):
            if item.get("duplicate"):
                self.stats.duplicates += 1
            if "status" in item:
                self.stats.statuses[int(item["status"])] += 1
            push = AcceptedPush(
                message_id=str(item["message_id"]),
                expected=job.expected[i] if i < len(job.expected) else frozenset(),
                pushed_ms=pushed_ms,
                accepted_ms=accepted_ms,
                expires_ms=accepted_ms + self.expired_seconds * 1000,
                target=job.targets[i] if job.targets else "*",
                push_type="broadcast" if job.kind == "broadcast" else path.rsplit("/", 1)[1],
            )
            accepted.append(push)
            self.stats.messages += 1
            if self.on_accepted is not None:
                self.on_accepted(push)
        return accepted

    async def bind(self, user_id: str, device_id: str) -> None:
        """Bind a device to a user with `POST /v1/bindings`; `ApiError` if refused."""
        answer = await self._post("/v1/bindings", {"user_id": user_id, "device_id": device_id})
        if answer is None:
            raise ApiError(f"could not bind {device_id!r} to {user_id!r}")
        self.stats.bindings += 1

    # --- load -------------------------------------------------------------------------

    async def run(
        self,
        jobs: Iterable[PushJob],
        *,
        rate: float = 0.0,
        duration: float | None = None,
        concurrency: int = 32,
    ) -> None:
        """Send `jobs` with at most `concurrency` requests in flight.

        `rate` is in messages per second (a `multiple` job of 100 targets is
        100 messages); 0 means as fast as the gateway answers. When the
        gateway is slower than `rate`, the schedule slips: nothing is sent in
        a burst to catch up. Stops after `duration` seconds if given (the
        requests in flight are still answered), else when `jobs` is exhausted.
        """
        if rate < 0 or concurrency < 1:
            raise ValueError("rate must be >= 0 and concurrency >= 1")
        slots = trio.Semaphore(concurrency)
        start = trio.current_time()  # the schedule's origin: moves when it slips
        end = math.inf if duration is None else start + duration
        scheduled = 0
        async with trio.open_nursery() as nursery:
            for job in jobs:
                if rate > 0:
                    now = trio.current_time()
                    due = start + scheduled / rate
                    if due <= now:
                        # Behind schedule: do not burst, restart it from here.
                        start, scheduled = now, 0
                    await trio.sleep_until(min(due, end))
                await slots.acquire()
                if trio.current_time() >= end:
                    slots.release()
                    break
                nursery.start_soon(self._send_and_release, job, slots)
                scheduled += job.messages

    async def _send_and_release(self, job: PushJob, slots: trio.Semaphore) -> None:
        try:
            await self.send(job)
        finally:
            slots.release()

    # --- HTTP -------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST with retries; the JSON answer, or None (counted) if it never succeeded."""
        attempt = 0
        while True:
            client = await self._free.receive()
            started = trio.current_time()
            response: httpx.Response | None = None
            try:
                response = await client.post(path, json=body)
            except httpx.TransportError as exc:
                error = exc
            finally:
                self._free_send.send_nowait(client)
            if response is None:
                if attempt >= self.max_retries:
                    self.stats.failed[type(error).__name__] += 1
                    return None
                attempt += 1
                self.stats.retries += 1
                await trio.sleep(0.1 * 2**attempt)
                continue
            status = response.status_code
            if status == 200:
                self.stats.api_latencies.append(round((trio.current_time() - started) * 1000))
                answer: dict[str, Any] = response.json()
                return answer
            if status == 429:
                self.stats.rate_limited += 1
                await trio.sleep(_retry_after(response))
                continue
            if status >= 500 and attempt < self.max_retries:
                attempt += 1
                self.stats.retries += 1
                await trio.sleep(0.1 * 2**attempt)
                continue
            self.stats.rejected[f"{status} {_error_code(response)}"] += 1
            return None

    def _next_key(self) -> str:
        self._seq += 1
        return f"sim-{self.run_id}-{self._seq}"


def _retry_after(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.1), MAX_RETRY_AFTER)


def _error_code(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return str(error["code"])
    except (ValueError, KeyError, TypeError):
        return "error"

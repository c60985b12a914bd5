"""The one interface every vendor channel has, and the skeleton the six share."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar, Protocol

import httpx
import trio

from gateway.clock import Clock

from .auth import AuthFailed, TokenCache
from .http import Answer, HttpOptions, could_not_connect, describe
from .message import VendorDelivery
from .registration import MAX_TOKEN_LENGTH
from .result import SendResult, accepted, refused
from .secret import Secret

log = logging.getLogger("pushgate.channels")


class Channel(Protocol):
    """An app's channel to one vendor.

    `send` takes at most `max_batch` deliveries and answers one `SendResult`
    per delivery, in order. It never raises for anything the vendor or the
    network does: garbage, refusals, timeouts and dropped connections are all
    results. `aclose` releases the connections.
    """

    @property
    def vendor(self) -> str: ...

    @property
    def max_batch(self) -> int: ...

    @property
    def unavailable_code(self) -> int | None:
        """The code a delivery gets when nothing could be sent (an open circuit, a
        failed connect); None where the vendor's table has none (→ 99999999)."""

    async def send(self, batch: Sequence[VendorDelivery]) -> list[SendResult]: ...

    async def aclose(self) -> None: ...


class HttpChannel:
    """Local limit checks, then the vendor call; transport errors become results."""

    vendor: ClassVar[str]
    max_batch: ClassVar[int] = 1
    unavailable_code: ClassVar[int | None] = None
    connection_lost_code: ClassVar[int | None] = None
    #: the vendor's code for a token it cannot have issued (too long): never sent
    bad_token_code: ClassVar[int | None] = None
    #: of the vendor's own codes: the token is gone for good / try again later
    dead_token_codes: ClassVar[frozenset[int]] = frozenset()
    transient_codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self, app_id: str, clock: Clock, options: HttpOptions, client: httpx.AsyncClient
    ) -> None:
        self.app_id = app_id
        self.clock = clock
        self.options = options
        self.client = client

    def check(self, delivery: VendorDelivery) -> SendResult | None:
        """A refusal for a limit the vendor documents, or None when it may be sent."""
        return None

    def _check_token(self, delivery: VendorDelivery) -> SendResult | None:
        limit = MAX_TOKEN_LENGTH[self.vendor]
        if len(delivery.token) <= limit:
            return None
        reason = f"local: the token is over {limit} characters, longer than {self.vendor} issues"
        return refused(self.vendor, self.bad_token_code, reason, dead_token=True, sent=False)

    async def send_checked(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        raise NotImplementedError

    async def send(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        if len(batch) > self.max_batch:
            raise ValueError(f"{self.vendor} takes at most {self.max_batch} deliveries per call")
        results = [self._check_token(d) or self.check(d) for d in batch]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            started = trio.current_time()
            answers = await self._send_guarded([batch[i] for i in todo])
            for i, result in zip(todo, answers, strict=True):
                results[i] = result
            codes = Counter(r.code for r in answers)
            log.info(
                "event=vendor_send vendor=%s app=%s deliveries=%d codes=%s ms=%d",
                self.vendor,
                self.app_id,
                len(todo),
                ",".join(f"{code}x{count}" for code, count in sorted(codes.items())),
                round((trio.current_time() - started) * 1000),
            )
        return [r for r in results if r is not None]

    async def _send_guarded(self, batch: Sequence[VendorDelivery]) -> list[SendResult]:
        try:
            return await self.send_checked(batch)
        except AuthFailed as exc:
            return [exc.result] * len(batch)
        except httpx.HTTPError as exc:
            return [self.connection_failure(exc)] * len(batch)

    def connection_failure(self, exc: httpx.HTTPError) -> SendResult:
        if could_not_connect(exc):
            return refused(
                self.vendor, self.unavailable_code, describe(exc), transient=True, sent=False
            )
        return refused(self.vendor, self.connection_lost_code, describe(exc), transient=True)

    def garbage(self, answer: Answer) -> SendResult:
        """An answer that is not what the vendor documents: NONE, raw kept; worth a
        retry only when the vendor said it failed on its side (5xx)."""
        return refused(
            self.vendor,
            None,
            answer.raw(),
            transient=answer.status >= 500,
            retry_after=answer.retry_after(),
        )

    def native_result(
        self, answer: Answer, code: object, *, success: int = 0, raw: str | None = None
    ) -> SendResult:
        """The result for a vendor that answers its own numeric `code` (Huawei, MiPush,
        OPPO, vivo): accepted, that code with what it means, or garbage if not a number."""
        if not isinstance(code, int) or isinstance(code, bool):
            return self.garbage(answer)
        raw = answer.raw() if raw is None else raw
        if code == success:
            return accepted(self.vendor, raw)
        return refused(
            self.vendor,
            code,
            raw,
            dead_token=code in self.dead_token_codes,
            transient=code in self.transient_codes or answer.status >= 500,
            retry_after=answer.retry_after(),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


async def with_token(
    tokens: TokenCache,
    call: Callable[[Secret], Awaitable[Answer]],
    rejected: Callable[[Answer], bool],
) -> Answer:
    """`call` with the cached token; once more with a fresh one if the vendor rejects it."""
    token = await tokens.get()
    answer = await call(token)
    if rejected(answer):
        tokens.invalidate(token)
        answer = await call(await tokens.get())
    return answer

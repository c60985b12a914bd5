"""What one delivery through a vendor became: the seeds' code, and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from protocol import Status, lookup

RAW_LIMIT: Final = 1024  # characters of a vendor's answer kept on the delivery


def bound_raw(text: str) -> str:
    """`text` cut to `RAW_LIMIT` characters (marked), control characters replaced."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    if len(clean) <= RAW_LIMIT:
        return clean
    return clean[: RAW_LIMIT - 1] + "…"


@dataclass(frozen=True, slots=True)
class SendResult:
    """The answer for one delivery.

    - `code`: the seeds' code: 2 (Acked) when the vendor accepted it, a code of
      that vendor's table when it refused, 99999999 (NONE) for anything else.
    - `raw`: the vendor's answer (or the local reason), at most `RAW_LIMIT` characters.
    - `dead_token`: the vendor says the token will never work again; the caller
      removes the device's vendor registration.
    - `transient`: worth trying again later (flow control, a 5xx, a dropped or
      failed connection, an open circuit); `retry_after` is the vendor's
      Retry-After in seconds when it gave one.
    - `sent`: a request for it reached the vendor (False for a local refusal,
      a failed connect, an open circuit or a full concurrency bound).
    """

    vendor: str
    code: int
    raw: str = ""
    dead_token: bool = False
    transient: bool = False
    retry_after: float | None = None
    sent: bool = True

    @property
    def accepted(self) -> bool:
        return self.code == Status.ACKED


def accepted(vendor: str, raw: str = "") -> SendResult:
    return SendResult(vendor, int(Status.ACKED), bound_raw(raw))


def refused(
    vendor: str,
    code: int | None,
    raw: str,
    *,
    dead_token: bool = False,
    transient: bool = False,
    retry_after: float | None = None,
    sent: bool = True,
) -> SendResult:
    """A refusal with the vendor's `code`; a code with no row in that vendor's
    table (or none at all) becomes NONE, and the raw answer says what it was."""
    if code is None or lookup(code, vendor) is None:
        code = int(Status.NONE)
    return SendResult(
        vendor,
        code,
        bound_raw(raw),
        dead_token=dead_token,
        transient=transient,
        retry_after=retry_after,
        sent=sent,
    )


def local_refusal(vendor: str, code: int | None, reason: str) -> SendResult:
    """A limit the vendor documents, checked before sending: nothing was sent."""
    return refused(vendor, code, f"local: {reason}", sent=False)


def unsent(vendor: str, code: int | None, reason: str, retry_after: float | None) -> SendResult:
    """Not attempted now (open circuit, full bound, failed connect): try again later."""
    return refused(vendor, code, reason, transient=True, retry_after=retry_after, sent=False)

"""Plain records of the vendor channels' tables (vendor_schema.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoredChannel:
    """An app's credentials for one vendor, still encrypted."""

    app_id: str
    vendor: str
    blob: bytes
    updated_at: int  # the version: a node reloads the channel when it changes

    def __repr__(self) -> str:
        return f"StoredChannel({self.app_id!r}, {self.vendor!r}, updated_at={self.updated_at})"


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    fallback_after_seconds: int


@dataclass(frozen=True, slots=True)
class VendorRegistration:
    vendor: str
    token: str
    updated_at: int

    def __repr__(self) -> str:
        return f"VendorRegistration({self.vendor!r}, token=<{len(self.token)}>)"


@dataclass(frozen=True, slots=True)
class FallbackClaim:
    """One due delivery leased to a sender (`owner` is the claim's id)."""

    owner: str
    message_seq: int
    device_id: str
    app_id: str
    attempts: int  # claims so far, this one included
    message_id: str
    msg_key: str
    title: str
    content: str
    expires_at: int
    vendor: str
    token: str = field(repr=False)
    channel_version: int = 0  # the credentials' updated_at
    ext: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FallbackOutcome:
    """What to record for a claim: the seeds' code, the raw answer, what comes next."""

    claim: FallbackClaim
    code: int
    raw: str = ""
    dead_token: bool = False
    retry_at: int | None = None  # a transient answer: due again then


@dataclass(frozen=True, slots=True)
class VendorAnswer:
    device_id: str
    vendor: str
    code: int
    raw: str
    answered_at: int

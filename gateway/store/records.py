"""Plain records the store hands out: no SQL, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import Push


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    name: str
    secret: str
    verify: bool


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One (message, target) the API wants stored."""

    push_type: str
    delivery_type: str
    target_id: str
    title: str
    content: str
    ext: dict[str, str] = field(default_factory=dict)
    msg_key: str | None = None
    expired_seconds: int = 259_200
    template: str | None = None
    platform: str | None = None  # broadcasts only: restrict to one platform


@dataclass(frozen=True, slots=True)
class Message:
    seq: int
    message_id: str
    app_id: str
    msg_key: str
    push_type: str
    delivery_type: str
    target_id: str
    title: str
    content: str
    ext: dict[str, str]
    created_at: int
    expires_at: int
    modified_at: int
    status: int
    # Read by push details only (get_message); other reads leave the defaults.
    revoked: bool = False
    verification: str | None = None  # None (not required), pending, approved, rejected

    def to_push(self) -> Push:
        return Push(
            id=self.message_id,
            msg_key=self.msg_key,
            push_type=self.push_type,
            title=self.title,
            content=self.content,
            ext=self.ext,
            created=self.created_at,
            expires=self.expires_at,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    device_id: str
    status: int
    channel: str
    code: int | None
    created_at: int
    sent_at: int | None
    acked_at: int | None
    modified_at: int


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What storing one message produced: the row, and where to send it now."""

    message: Message
    duplicate: bool
    device_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_id: str
    platform: str | None
    user_id: str | None
    last_seen: int | None


class MsgKeyConflict(Exception):
    """The same (target_id, msg_key) was pushed before with different content."""

    def __init__(self, target_id: str, msg_key: str, index: int | None = None) -> None:
        super().__init__(f"msg_key {msg_key!r} for target {target_id!r} exists with other content")
        self.target_id = target_id
        self.msg_key = msg_key
        self.index = index  # which item of a multi-item insert conflicted


class StoreUnavailable(Exception):
    """The store could not commit (disk full, I/O error): nothing was accepted."""


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    title: str
    content: str
    updated_at: int


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    message: Message
    targeted: int  # deliveries opened
    delivered: int  # written to the device's socket (or acked)
    acked: int


class NotWaitingForVerify(Exception):
    """A verify call for a message that is not (or no longer) waiting for it."""

    def __init__(self, message_id: str, state: str) -> None:
        super().__init__(f"message {message_id!r} is not waiting for verification: it is {state}")
        self.message_id = message_id
        self.state = state  # approved, rejected, revoked, expired, not_required


@dataclass(frozen=True, slots=True)
class StoreStatistics:
    """What the store has done and holds now (trio's `statistics()` convention)."""

    commits: int  # group commits (transactions)
    ops: int  # operations committed
    in_flight: int  # operations submitted and not yet answered
    deferred_waiting: int  # unawaited writes not yet taken (acks and sent marks, in message ids)

"""What a channel sends: one message to one vendor token."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol import Push


@dataclass(frozen=True, slots=True)
class VendorMessage:
    """The parts of a stored message a vendor payload is built from (times in ms)."""

    message_id: str
    msg_key: str
    title: str
    content: str
    expires_ms: int
    ext: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_push(cls, push: Push) -> VendorMessage:
        return cls(
            message_id=push.id,
            msg_key=push.msg_key,
            title=push.title,
            content=push.content,
            expires_ms=push.expires,
            ext=dict(push.ext),
        )

    def ttl_seconds(self, now_ms: int, maximum: int) -> int:
        """Seconds the vendor may keep it: what is left until expiry, at most `maximum`
        (a vendor never holds it past expiry; it may drop it earlier). 0 when expired."""
        return max(0, min((self.expires_ms - now_ms) // 1000, maximum))

    def app_data(self) -> dict[str, object]:
        """What the app receives besides title and content, in every vendor's payload:
        the message `id` (to de-duplicate against the self-built copy), `msg_key`, `ext`."""
        return {"id": self.message_id, "msg_key": self.msg_key, "ext": dict(self.ext)}

    def app_data_json(self) -> str:
        return json.dumps(self.app_data(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class VendorDelivery:
    """One delivery through a vendor: this message to this device's vendor token."""

    message: VendorMessage
    token: str

    def __repr__(self) -> str:
        # The vendor token identifies a device: keep it out of reprs and logs.
        return f"VendorDelivery(message_id={self.message.message_id!r}, token=<{len(self.token)}>)"

"""JSON shapes of the API's answers, built from store records."""

from typing import Any

from gateway.store import Delivery, DeviceInfo, Message, PushOutcome
from gateway.timefmt import iso_ms, iso_ms_or_none
from protocol.status_codes import lookup


def push_answer(outcome: PushOutcome) -> dict[str, Any]:
    m = outcome.message
    answer: dict[str, Any] = {"message_id": m.message_id, "msg_key": m.msg_key, "status": m.status}
    if outcome.duplicate:
        answer["duplicate"] = True
    return answer


def list_item(m: Message) -> dict[str, Any]:
    return {
        "message_id": m.message_id,
        "msg_key": m.msg_key,
        "push_type": m.push_type,
        "delivery_type": m.delivery_type,
        "target_id": m.target_id,
        "title": m.title,
        "created_at": iso_ms(m.created_at),
        "status": m.status,
    }


def message_details(m: Message, deliveries: list[Delivery]) -> dict[str, Any]:
    code = lookup(m.status)
    return {
        **list_item(m),
        "content": m.content,
        "ext": m.ext,
        "status_name": code.name if code else "NONE",
        "status_description": code.description if code else "Unknown status.",
        "expires_at": iso_ms(m.expires_at),
        "modified_at": iso_ms(m.modified_at),
        # None when the app does not verify its pushes; else pending/approved/rejected.
        "verification": m.verification,
        "revoked": m.revoked,
        "deliveries": [
            {
                "device_id": d.device_id,
                "status": d.status,
                "modified_at": iso_ms(d.modified_at),
                "channel": d.channel,
                "sent_at": iso_ms_or_none(d.sent_at),
                "acked_at": iso_ms_or_none(d.acked_at),
            }
            for d in deliveries
        ],
    }


def device_view(d: DeviceInfo, online: bool) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "platform": d.platform,
        "online": online,
        "last_seen": iso_ms_or_none(d.last_seen),
        "user_id": d.user_id,
    }

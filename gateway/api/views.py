"""JSON shapes of the API's answers, built from store records."""

from collections.abc import Sequence
from typing import Any

from gateway.channels.registration import token_tail
from gateway.store import (
    Delivery,
    DeviceInfo,
    Message,
    PushOutcome,
    VendorAnswer,
    VendorRegistration,
)
from gateway.timefmt import iso_ms, iso_ms_or_none
from protocol.status_codes import StatusCode, lookup


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


def _code_row(code: int, channel: str) -> StatusCode | None:
    """The catalog row of a delivery's code: its vendor's table, else the common one."""
    return lookup(code, channel) or lookup(code)


def message_details(
    m: Message, deliveries: list[Delivery], answers: Sequence[VendorAnswer] = ()
) -> dict[str, Any]:
    # A vendor's code as the message status is named from that vendor's table.
    vendor = next((d.channel for d in deliveries if d.code == m.status and d.channel != "self"), "")
    code = lookup(m.status) or lookup(m.status, vendor)
    raw = {a.device_id: a.raw for a in answers}
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
                **_delivery_code(d, raw.get(d.device_id)),
            }
            for d in deliveries
        ],
    }


def _delivery_code(d: Delivery, raw: str | None) -> dict[str, Any]:
    """`code` with its catalog name and description; a vendor's raw answer if kept."""
    row = None if d.code is None else _code_row(d.code, d.channel)
    out: dict[str, Any] = {
        "code": d.code,
        "code_name": row.name if row else None,
        "code_description": row.description if row else None,
    }
    if raw is not None:
        out["vendor_answer"] = raw
    return out


def device_view(
    d: DeviceInfo, online: bool, registration: VendorRegistration | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "device_id": d.device_id,
        "platform": d.platform,
        "online": online,
        "last_seen": iso_ms_or_none(d.last_seen),
        "user_id": d.user_id,
    }
    if registration is not None:  # CONTRACT §6: the vendor, never the whole token
        view["vendor"] = registration.vendor
        view["vendor_token"] = token_tail(registration.token)
    return view

"""Rows to records, and the statuses the queries use."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from protocol.status_codes import Status

from ..records import Delivery, Message
from .text import from_db

MSG_COLS = (
    "seq, message_id, app_id, msg_key, push_type, delivery_type, target_id, title, content,"
    " ext, created_at, expires_at, modified_at, status"
)
M_COLS = ", ".join("m." + c.strip() for c in MSG_COLS.split(","))
N_MSG_COLS = 14

WAITING = int(Status.WAITING_FOR_VERIFY)
PENDING = int(Status.DEVICE_NOT_ONLINE_OR_NO_RESPONSE)
NO_BIND = int(Status.NO_BIND_INFO)
ACKED = int(Status.ACKED)
VERIFY_PENDING, VERIFY_APPROVED, VERIFY_REJECTED = "pending", "approved", "rejected"

Row = Sequence[Any]


def message_from_row(row: Row, offset: int = 0) -> Message:
    r = row[offset : offset + N_MSG_COLS]
    return Message(
        seq=int(r[0]),
        message_id=r[1],
        app_id=r[2],
        msg_key=r[3],
        push_type=r[4],
        delivery_type=r[5],
        target_id=r[6],
        title=from_db(r[7]),
        content=from_db(r[8]),
        ext=json.loads(r[9]),
        created_at=int(r[10]),
        expires_at=int(r[11]),
        modified_at=int(r[12]),
        status=int(r[13]),
    )


def delivery_from_row(r: Row) -> Delivery:
    return Delivery(
        device_id=r[0],
        status=int(r[1]),
        channel=r[2],
        code=None if r[3] is None else int(r[3]),
        created_at=int(r[4]),
        sent_at=None if r[5] is None else int(r[5]),
        acked_at=None if r[6] is None else int(r[6]),
        modified_at=int(r[7]),
    )

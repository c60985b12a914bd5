"""Small parts: raw answers bounded, Retry-After parsed, the message from a push,
over-long tokens refused before sending, secrets that never print."""

from __future__ import annotations

import pickle

import pytest
import trustme

from gateway.channels import MAX_TOKEN_LENGTH, RAW_LIMIT, Secret, VendorMessage
from gateway.channels.http import parse_retry_after
from gateway.channels.result import bound_raw, refused
from gateway.clock import ManualClock
from protocol import Push

from .envs import vendor_env


def test_raw_answers_are_bounded_and_printable() -> None:
    assert bound_raw("ok\x00\nthen") == "ok  then"
    long = bound_raw("x" * 5000)
    assert len(long) == RAW_LIMIT and long.endswith("…")


def test_a_code_outside_the_table_is_none() -> None:
    assert refused("oppo", 12345, "raw").code == 99999999
    assert refused("oppo", 10000, "raw").code == 10000
    assert refused("vivo", -1, "raw").code == 99999999  # OPPO's -1 is not vivo's


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("99999") == 3600.0  # capped
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412500.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_message_from_a_push_frame() -> None:
    push = Push(
        id="m1",
        msg_key="k1",
        push_type="simple",
        title="T",
        content="C",
        ext={"a": "b"},
        created=1,
        expires=2_000,
    )
    message = VendorMessage.from_push(push)
    assert (message.message_id, message.msg_key, message.expires_ms) == ("m1", "k1", 2_000)
    assert message.app_data() == {"id": "m1", "msg_key": "k1", "ext": {"a": "b"}}
    assert message.ttl_seconds(now_ms=0, maximum=1) == 1
    assert message.ttl_seconds(now_ms=2_000, maximum=100) == 0


@pytest.mark.parametrize(
    ("vendor", "code"),
    [
        ("apns", 2009),
        ("fcm", 90000002),
        ("huawei", 80300007),
        ("xiaomi", 20301),
        ("oppo", 10000),
        ("vivo", 10302),
    ],
)
async def test_over_long_token_is_refused_unsent_and_dead(
    vendor: str, code: int, wall: ManualClock, ca: trustme.CA
) -> None:
    async with vendor_env(vendor, wall, ca) as env:
        result = await env.send(token="ab" * MAX_TOKEN_LENGTH[vendor])
        assert env.standin.requests == []
    assert (result.code, result.dead_token, result.sent) == (code, True, False)


def test_secret_never_prints_nor_pickles() -> None:
    secret = Secret("hunter2-hunter2-hunter2-abcd")
    assert (str(secret), repr(secret), f"{secret}") == (
        "********",
        "Secret('********')",
        "********",
    )
    assert secret.masked() == "********abcd" and Secret("short").masked() == "********"
    assert secret == Secret("hunter2-hunter2-hunter2-abcd") != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)

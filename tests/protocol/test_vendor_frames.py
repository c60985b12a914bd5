"""The vendor registration in the device protocol (CONTRACT §6): optional `vendor`
and `vendor_token` in `hello`, the `vendor` frame answered `vendor_ok`, and a
clear error for an unknown vendor or a token that vendor could not have issued."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from protocol import (
    ErrorCode,
    Hello,
    Rejection,
    ServerConnection,
    Vendor,
    VendorOk,
    decode,
    encode,
    hello_problem,
    registration_problem,
)

HELLO = {"t": "hello", "v": 1, "app": "a", "device": "d", "platform": "ios", "token": "x"}


def _open() -> ServerConnection:
    conn = ServerConnection()
    assert isinstance(
        conn.receive(encode(Hello(**{k: v for k, v in HELLO.items() if k != "t"}))), Hello
    )
    conn.authenticated()
    conn.attached()
    return conn


def test_hello_carries_an_optional_vendor_registration() -> None:
    plain = decode(msgpack.packb(HELLO))
    assert isinstance(plain, Hello) and (plain.vendor, plain.vendor_token) == (None, None)
    assert "vendor" not in plain.to_map()
    with_vendor = decode(msgpack.packb({**HELLO, "vendor": "apns", "vendor_token": "ab" * 32}))
    assert isinstance(with_vendor, Hello)
    assert (with_vendor.vendor, with_vendor.vendor_token) == ("apns", "ab" * 32)
    assert decode(encode(with_vendor)) == with_vendor
    assert hello_problem(with_vendor) is None


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"vendor": "nokia", "vendor_token": "t"}, "vendor"),
        ({"vendor": "apns"}, "vendor_token"),
        ({"vendor_token": "abc"}, "vendor"),
        ({"vendor": "apns", "vendor_token": "not-hex"}, "vendor_token"),
        ({"vendor": "vivo", "vendor_token": "1" * 65}, "vendor_token"),
        ({"vendor": 7, "vendor_token": "t"}, "vendor"),
        ({"vendor": "fcm", "vendor_token": b"bytes"}, "vendor_token"),
    ],
)
def test_a_bad_registration_in_hello_is_bad_hello_naming_the_field(
    fields: dict[str, Any], named: str
) -> None:
    hello = decode(msgpack.packb({**HELLO, **fields}))
    assert isinstance(hello, Hello)
    problem = hello_problem(hello)
    assert problem is not None
    assert problem[0] is ErrorCode.BAD_HELLO and problem[1].startswith(named + ":")


def test_the_vendor_frame_is_accepted_once_open() -> None:
    conn = _open()
    frame = conn.receive(msgpack.packb({"t": "vendor", "vendor": "fcm", "token": "SECRET-TOK"}))
    assert frame == Vendor(vendor="fcm", token="SECRET-TOK")
    assert "SECRET" not in repr(frame)  # tokens stay out of logs
    assert decode(encode(VendorOk())) == VendorOk()
    assert VendorOk().to_map() == {"t": "vendor_ok"}


def test_a_vendor_frame_before_hello_is_hello_required() -> None:
    rejection = ServerConnection().receive(encode(Vendor(vendor="fcm", token="t")))
    assert isinstance(rejection, Rejection) and rejection.fatal
    assert rejection.error.code == ErrorCode.HELLO_REQUIRED


def test_a_vendor_frame_of_the_wrong_shape_is_bad_field() -> None:
    rejection = _open().receive(msgpack.packb({"t": "vendor", "vendor": "fcm", "token": 5}))
    assert isinstance(rejection, Rejection) and rejection.error.code == ErrorCode.BAD_FIELD


def test_bad_vendor_is_a_reply_once_open() -> None:
    conn = _open()
    rejection = conn.error(ErrorCode.BAD_VENDOR, "vendor: unknown vendor")
    assert not rejection.fatal and conn.open


@pytest.mark.parametrize(
    ("vendor", "token", "field"),
    [
        ("nokia", "t", "vendor"),
        ("fcm", "", "token"),
        ("fcm", "a b", "token"),
        ("apns", "abc", "token"),
        ("huawei", "h" * 513, "token"),
    ],
)
def test_registration_rules(vendor: str, token: str, field: str) -> None:
    problem = registration_problem(vendor, token)
    assert problem is not None and problem[0] == field


def test_good_registrations() -> None:
    assert registration_problem("apns", "A1b2" * 16) is None
    assert registration_problem("xiaomi", "x" * 256) is None

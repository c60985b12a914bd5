"""Pure checks of the pub/sub message format, routes, key names and settings."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.broker import (
    Bind,
    Broadcast,
    BrokerConfig,
    BrokerMessage,
    Config,
    Deliver,
    Kick,
    MessageError,
    Revoke,
    Route,
    Unbind,
)
from gateway.broker.keys import Keys
from gateway.broker.messages import MAX_DEVICES_PER_MESSAGE, decode, encode

MAX = 64 * 1024

EXAMPLES: list[BrokerMessage] = [
    Deliver(app="app1", message_id="m1", payload=b"\x82\xa1t\xa4push", devices=("d1", "d:2")),
    Kick(app="app1", device="d1", epoch=7),
    Revoke(app="app1", message_id="m1"),
    Bind(app="app1", device="d1", user="u1"),
    Unbind(app="app1", device="d1"),
    Broadcast(app="app1", message_id="b1", payload=b"x", platform="ios"),
    Broadcast(app="app1", message_id="b1", payload=b"x"),
    Config(app="app:with:colons"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.T)
def test_every_message_round_trips(message: BrokerMessage) -> None:
    assert decode(encode(message, origin="node-a"), max_size=MAX) == ("node-a", message)


def _packed(**fields: object) -> bytes:
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xc1", "malformed"),
        (_packed(t="kick", app="a", device="d"), "'o'"),
        (_packed(t="kick", o="bad:node", app="a", device="d", epoch=1), "'o'"),
        (_packed(t="teleport", o="n", app="a"), "unknown message type"),
        (_packed(t="kick", o="n", app="a", device="d", epoch=-1), "'epoch'"),
        (_packed(t="kick", o="n", app="a", device="d", epoch=True), "'epoch'"),
        (_packed(t="kick", o="n", app="a", device="has space", epoch=1), "'device'"),
        (
            _packed(t="deliver", o="n", app="a", message_id="m", payload=b"x", devices=[]),
            "'devices'",
        ),
        (
            _packed(t="deliver", o="n", app="a", message_id="m", payload="str", devices=["d"]),
            "'payload'",
        ),
        (_packed(t="bind", o="n", app="a", device="d", user="u" * 129), "'user'"),
        (msgpack.packb(["t", "kick"]), "not a map"),
        (b"\x81\xa1t" + b"\xa4kick" + b"\x00", "malformed"),  # trailing junk
    ],
)
def test_junk_is_a_message_error(data: bytes, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode(data, max_size=MAX)


def test_size_is_checked_before_decoding() -> None:
    data = encode(Deliver(app="a", message_id="m", payload=b"x" * 2000, devices=("d",)), origin="n")
    with pytest.raises(MessageError, match="exceeds"):
        decode(data, max_size=1024)


def test_too_many_devices_is_refused() -> None:
    devices = [f"d{i}" for i in range(MAX_DEVICES_PER_MESSAGE + 1)]
    data = _packed(t="deliver", o="n", app="a", message_id="m", payload=b"x", devices=devices)
    with pytest.raises(MessageError):
        decode(data, max_size=MAX)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_message_or_message_error(data: bytes) -> None:
    try:
        decode(data, max_size=MAX)
    except MessageError:
        pass


def test_route_values() -> None:
    assert Route("node-a", 12).encode() == "node-a:12"
    assert Route.decode(b"node-a:12") == Route("node-a", 12)
    assert Route.decode("node-a:x") is None
    assert Route.decode("12") is None


def test_device_keys_are_unambiguous_with_colons() -> None:
    keys = Keys("p:")
    assert keys.device("a:b", "c") != keys.device("a", "b:c")
    assert keys.device("a%3Ab", "c") != keys.device("a:b", "c")
    assert keys.device("app1", "dev1") == "p:dev:app1:dev1"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://x"}, "redis://"),
        ({"prefix": "has space"}, "prefix"),
        ({"heartbeat_interval": 5.0, "node_ttl": 6.0}, "twice heartbeat"),
        ({"route_refresh_interval": 60.0, "route_ttl": 90.0}, "twice route_refresh"),
        ({"call_timeout": 0}, "call_timeout"),
        ({"inbox_size": 0}, "inbox_size"),
        ({"backoff_min": 2.0, "backoff_max": 1.0}, "backoff_min"),
    ],
)
def test_bad_settings_fail_at_start(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerConfig(**overrides)  # type: ignore[arg-type]

"""Credentials per vendor: every bad field named (never quoted), a masked view,
vendor token limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.channels import (
    ApnsCredentials,
    ChannelConfigError,
    FcmCredentials,
    masked_view,
    parse_credentials,
    token_tail,
    validate_registration,
)

from . import keys

APNS = {
    "team_id": keys.TEAM_ID,
    "key_id": keys.KEY_ID,
    "private_key": keys.p8_pem(),
    "topic": keys.TOPIC,
    "environment": "production",
}
VALID: dict[str, dict[str, Any]] = {
    "apns": APNS,
    "fcm": {"service_account": keys.service_account()},
    "huawei": {"app_id": "10086", "app_secret": "huawei-app-secret-0123456789"},
    "xiaomi": {"app_secret": "xiaomi-app-secret-0123456789", "package_name": "com.example"},
    "oppo": {"app_key": "oppo-key", "master_secret": "oppo-master-secret-0123456789"},
    "vivo": {"app_id": "10001", "app_key": "vivo-key", "app_secret": "vivo-secret-0123456789"},
}


def error_of(vendor: str, fields: object) -> ChannelConfigError:
    with pytest.raises(ChannelConfigError) as caught:
        parse_credentials(vendor, fields)
    return caught.value


@pytest.mark.parametrize("vendor", VALID)
def test_valid_credentials_parse(vendor: str) -> None:
    credentials = parse_credentials(vendor, VALID[vendor])
    assert credentials.vendor == vendor


@pytest.mark.parametrize(
    ("vendor", "field"),
    [(vendor, field) for vendor, fields in VALID.items() for field in fields],
)
def test_each_missing_field_is_named(vendor: str, field: str) -> None:
    fields = {k: v for k, v in VALID[vendor].items() if k != field}
    error = error_of(vendor, fields)
    assert (error.field, error.message) == (field, "missing field")


def test_service_account_as_text_or_object() -> None:
    as_text = parse_credentials("fcm", {"service_account": keys.service_account_text()})
    as_object = parse_credentials("fcm", VALID["fcm"])
    assert isinstance(as_text, FcmCredentials) and isinstance(as_object, FcmCredentials)
    assert as_text.service_account == as_object.service_account
    assert as_text.service_account.token_uri == "https://oauth2.googleapis.com/token"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"},
            "private_key",
        ),
        ({"private_key": keys.rsa_pem()}, "private_key"),  # an RSA key is no .p8 key
        ({"team_id": "short"}, "team_id"),
        ({"key_id": "lowercase1"}, "key_id"),
        ({"environment": "staging"}, "environment"),
        ({"topic": ""}, "topic"),
        ({"endpoint": "ftp://example.com"}, "endpoint"),
        ({"endpoint": "https://example.com/?x=1"}, "endpoint"),
        ({"topic": 42}, "topic"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_apns_fields(change: dict[str, object], field: str) -> None:
    assert error_of("apns", {**APNS, **change}).field == field


@pytest.mark.parametrize(
    ("service_account", "field"),
    [
        ("{not json", "service_account"),
        ("[1, 2]", "service_account"),
        (42, "service_account"),
        ({**keys.service_account(), "type": "authorized_user"}, "service_account.type"),
        ({**keys.service_account(), "private_key": "garbage"}, "service_account.private_key"),
        ({**keys.service_account(), "private_key": keys.p8_pem()}, "service_account.private_key"),
        ({**keys.service_account(), "client_email": "nobody"}, "service_account.client_email"),
        ({**keys.service_account(), "token_uri": "token"}, "service_account.token_uri"),
        (
            {k: v for k, v in keys.service_account().items() if k != "project_id"},
            "service_account.project_id",
        ),
    ],
)
def test_bad_service_accounts(service_account: object, field: str) -> None:
    assert error_of("fcm", {"service_account": service_account}).field == field


def test_unknown_vendor_and_non_object() -> None:
    assert error_of("nokia", {}).field == "vendor"
    assert error_of("huawei", ["app_id"]).field == "body"


def test_masked_view_shows_no_secret_in_full() -> None:
    views = {vendor: masked_view(parse_credentials(vendor, f)) for vendor, f in VALID.items()}
    text = json.dumps(views)
    for secret in (
        "huawei-app-secret-0123456789",
        "xiaomi-app-secret-0123456789",
        "oppo-master-secret-0123456789",
        "vivo-secret-0123456789",
    ):
        assert secret not in text
    assert "PRIVATE KEY" not in text
    assert views["huawei"] == {"vendor": "huawei", "app_id": "10086", "app_secret": "********6789"}
    assert views["apns"]["private_key"] == "********"
    account = views["fcm"]["service_account"]
    assert isinstance(account, dict)
    assert account["client_email"] == keys.CLIENT_EMAIL and account["private_key"] == "********"


def test_reprs_and_errors_hide_secrets() -> None:
    apns = parse_credentials("apns", APNS)
    assert isinstance(apns, ApnsCredentials)
    assert "PRIVATE" not in repr(apns) and "PRIVATE" not in str(apns.private_key)
    assert f"{apns.private_key}" == "********"
    error = error_of("apns", {**APNS, "private_key": "-----BEGIN PRIVATE KEY-----\nSENTINEL"})
    assert "SENTINEL" not in str(error) and "SENTINEL" not in repr(error)


@pytest.mark.parametrize(
    ("vendor", "token", "ok"),
    [
        ("apns", "ab" * 32, True),
        ("apns", "ab" * 100, True),
        ("apns", "ab" * 101, False),  # over 100 bytes
        ("apns", "xyz", False),  # not hex
        ("apns", "abc", False),  # half a byte
        ("vivo", "1" * 23, True),
        ("vivo", "1" * 65, False),
        ("fcm", "f" * 4096, True),
        ("fcm", "f" * 4097, False),
        ("huawei", "h" * 513, False),
        ("xiaomi", "has space", False),
        ("oppo", "", False),
    ],
)
def test_vendor_token_limits(vendor: str, token: str, ok: bool) -> None:
    if ok:
        assert validate_registration(vendor, token) == (vendor, token)
    else:
        with pytest.raises(ChannelConfigError) as caught:
            validate_registration(vendor, token)
        assert caught.value.field == "token"


def test_registration_of_unknown_vendor() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        validate_registration("blackberry", "t")
    assert caught.value.field == "vendor"


def test_token_tail() -> None:
    assert token_tail("abcdef123456") == "123456"

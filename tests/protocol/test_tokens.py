"""Device tokens and bind signatures against a reference built from the contract's text."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import bind_signature, device_token, verify_bind_signature, verify_device_token

# CONTRACT.md §3: lowercase hex HMAC-SHA256 with the app's secret as key, over
# "device:" + app + ":" + device and "bind:" + app + ":" + device + ":" + user.


def reference(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def ref_device_token(secret: str, app: str, device: str) -> str:
    return reference(secret, "device:" + app + ":" + device)


def ref_bind_signature(secret: str, app: str, device: str, user: str) -> str:
    return reference(secret, "bind:" + app + ":" + device + ":" + user)


LOWER_HEX_64 = re.compile(r"[0-9a-f]{64}")
texts = st.text(max_size=40)


def test_known_vectors() -> None:
    # Computed independently: printf 'device:demo:dev-1' | openssl dgst -sha256 -hmac s3cret
    assert device_token("s3cret", "demo", "dev-1") == (
        "45dd87563a6fb69db00d7fe3a43d1241345657a897cf2d414f94a83229e9cb4c"
    )
    # printf 'bind:demo:dev-1:alice' | openssl dgst -sha256 -hmac s3cret
    assert bind_signature("s3cret", "demo", "dev-1", "alice") == (
        "f731b1556cff6e26ef55c7b37d0fb17cddf66e4d7f6d2364b1015ab83b084e74"
    )


@given(secret=texts, app=texts, device=texts)
def test_device_token_matches_the_contract(secret: str, app: str, device: str) -> None:
    token = device_token(secret, app, device)
    assert token == ref_device_token(secret, app, device)
    assert LOWER_HEX_64.fullmatch(token)
    assert verify_device_token(secret, app, device, token)


@given(secret=texts, app=texts, device=texts, user=texts)
def test_bind_signature_matches_the_contract(secret: str, app: str, device: str, user: str) -> None:
    sig = bind_signature(secret, app, device, user)
    assert sig == ref_bind_signature(secret, app, device, user)
    assert LOWER_HEX_64.fullmatch(sig)
    assert verify_bind_signature(secret, app, device, user, sig)


def _flip_first(hex_digest: str) -> str:
    return ("1" if hex_digest[0] == "0" else "0") + hex_digest[1:]


SECRET, APP, DEVICE, USER = "s3cret", "demo", "dev-1", "alice"
GOOD_TOKEN = ref_device_token(SECRET, APP, DEVICE)
GOOD_SIG = ref_bind_signature(SECRET, APP, DEVICE, USER)
WRONG_VALUES = ["", "0" * 64, GOOD_TOKEN[:-1], GOOD_TOKEN + "0", " " + GOOD_TOKEN, "é" * 64]


@pytest.mark.parametrize(
    "token",
    [
        *WRONG_VALUES,
        _flip_first(GOOD_TOKEN),
        ref_device_token("other", APP, DEVICE),
        ref_device_token(SECRET, "other", DEVICE),
        ref_device_token(SECRET, APP, "dev-2"),
        GOOD_SIG,
        GOOD_TOKEN[:63] + "é",
    ],
)
def test_wrong_device_token_is_rejected(token: str) -> None:
    assert not verify_device_token(SECRET, APP, DEVICE, token)


@pytest.mark.parametrize(
    "sig",
    [
        *WRONG_VALUES,
        _flip_first(GOOD_SIG),
        ref_bind_signature("other", APP, DEVICE, USER),
        ref_bind_signature(SECRET, "other", DEVICE, USER),
        ref_bind_signature(SECRET, APP, "dev-2", USER),
        ref_bind_signature(SECRET, APP, DEVICE, "bob"),
        GOOD_TOKEN,
        GOOD_SIG[:63] + "é",
    ],
)
def test_wrong_bind_signature_is_rejected(sig: str) -> None:
    assert not verify_bind_signature(SECRET, APP, DEVICE, USER, sig)


def test_right_values_are_accepted() -> None:
    assert verify_device_token(SECRET, APP, DEVICE, GOOD_TOKEN)
    assert verify_bind_signature(SECRET, APP, DEVICE, USER, GOOD_SIG)


@given(token=texts)
def test_verify_never_raises_on_peer_input(token: str) -> None:
    # The token arrives from the device: any string is an answer, never a crash.
    assert verify_device_token(SECRET, APP, DEVICE, token) is (token == GOOD_TOKEN)
    assert verify_bind_signature(SECRET, APP, DEVICE, USER, token) is (token == GOOD_SIG)

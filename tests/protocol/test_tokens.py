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
# "device:" + app + ":" + device and "bind\n" + app + "\n" + device + "\n" + user.


def reference(secret: str, message: str) -> str:
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def ref_device_token(secret: str, app: str, device: str) -> str:
    return reference(secret, "device:" + app + ":" + device)


def ref_bind_signature(secret: str, app: str, device: str, user: str) -> str:
    return reference(secret, "bind\n" + app + "\n" + device + "\n" + user)


LOWER_HEX_64 = re.compile(r"[0-9a-f]{64}")
texts = st.text(max_size=40)


def test_known_vectors() -> None:
    # Computed independently: printf 'device:demo:dev-1' | openssl dgst -sha256 -hmac s3cret
    assert device_token("s3cret", "demo", "dev-1") == (
        "45dd87563a6fb69db00d7fe3a43d1241345657a897cf2d414f94a83229e9cb4c"
    )
    # printf 'bind\ndemo\ndev-1\nalice' | openssl dgst -sha256 -hmac s3cret
    assert bind_signature("s3cret", "demo", "dev-1", "alice") == (
        "05bf766e86a675b9e3b997978193e52e3bd0e1ba433b7f1f900a93b9c3c5b8a0"
    )


def test_the_old_colon_signature_is_no_longer_accepted() -> None:
    # The former text, "bind:" + app + ":" + device + ":" + user (f731b1…):
    # printf 'bind:demo:dev-1:alice' | openssl dgst -sha256 -hmac s3cret
    old = "f731b1556cff6e26ef55c7b37d0fb17cddf66e4d7f6d2364b1015ab83b084e74"
    assert not verify_bind_signature("s3cret", "demo", "dev-1", "alice", old)


def test_a_colon_in_an_id_cannot_move_between_device_and_user() -> None:
    # With ":" separators these two pairs signed the same text, so a signature
    # issued for user "x:alice" on device "mal" bound device "mal:x" to "alice".
    issued = bind_signature(SECRET, APP, "mal", "x:alice")
    assert not verify_bind_signature(SECRET, APP, "mal:x", "alice", issued)
    assert issued != bind_signature(SECRET, APP, "mal:x", "alice")
    assert verify_bind_signature(SECRET, APP, "mal", "x:alice", issued)


@given(joined=st.text(alphabet="ab:", min_size=3, max_size=16))
def test_every_colon_split_of_the_same_text_signs_differently(joined: str) -> None:
    # Each split of "mal:x:alice" at one of its colons is a (device, user)
    # pair that the ":" text signed identically; now each has its own signature.
    pairs = {
        (joined[:i], joined[i + 1 :])
        for i, char in enumerate(joined)
        if char == ":" and 0 < i < len(joined) - 1
    }
    sigs = {bind_signature(SECRET, APP, device, user) for device, user in pairs}
    assert len(sigs) == len(pairs)


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

"""Credentials encrypted at rest: key from the environment or a file, rotation,
refusal without a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.channels import (
    CredentialCipher,
    KeyringError,
    NoChannelKey,
    generate_key,
    parse_credentials,
)

from .test_credentials import VALID


@pytest.mark.parametrize("vendor", VALID)
def test_round_trip(vendor: str) -> None:
    cipher = CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": generate_key()})
    credentials = parse_credentials(vendor, VALID[vendor])
    blob = cipher.encrypt(credentials)
    assert cipher.decrypt(blob) == credentials
    for value in VALID[vendor].values():
        if isinstance(value, str):
            assert value.encode() not in blob


def test_no_key_is_refused_with_what_to_do() -> None:
    with pytest.raises(NoChannelKey) as caught:
        CredentialCipher.from_environment({})
    assert "PUSHGATE_CHANNEL_KEY" in str(caught.value)
    assert "PUSHGATE_CHANNEL_KEY_FILE" in str(caught.value)


def test_key_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "channel.key"
    path.write_text(generate_key() + "\n")
    cipher = CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY_FILE": str(path)})
    credentials = parse_credentials("xiaomi", VALID["xiaomi"])
    assert cipher.decrypt(cipher.encrypt(credentials)) == credentials


def test_unreadable_or_malformed_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="cannot read"):
        CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY_FILE": str(tmp_path / "none")})
    with pytest.raises(KeyringError, match="key 1 is not a Fernet key") as caught:
        CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": "short-SENTINEL"})
    assert "SENTINEL" not in str(caught.value)


def test_rotation_keeps_old_blobs_readable() -> None:
    old, new = generate_key(), generate_key()
    credentials = parse_credentials("oppo", VALID["oppo"])
    blob = CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": old}).encrypt(credentials)
    rotated = CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": f"{new},{old}"})
    assert rotated.decrypt(blob) == credentials
    fresh = rotated.rotate(blob)
    only_new = CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": new})
    assert only_new.decrypt(fresh) == credentials
    with pytest.raises(KeyringError, match="do not decrypt"):
        only_new.decrypt(blob)


def test_cipher_repr_hides_keys() -> None:
    key = generate_key()
    assert key not in repr(CredentialCipher.from_environment({"PUSHGATE_CHANNEL_KEY": key}))

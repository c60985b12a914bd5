"""Vendor credentials encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256, from
`cryptography`), with a key the operator keeps outside the database.

The key comes from ``PUSHGATE_CHANNEL_KEY`` (the key itself) or
``PUSHGATE_CHANNEL_KEY_FILE`` (a file holding it). Several keys, comma- or
line-separated, allow rotation: the first encrypts, any of them decrypts.
With no key configured, storing credentials is refused (`NoChannelKey`):
pushgate never writes a vendor secret in clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .credentials import Credentials, parse_credentials, reveal_for_storage
from .errors import ChannelConfigError

KEY_ENV: Final = "PUSHGATE_CHANNEL_KEY"
KEY_FILE_ENV: Final = "PUSHGATE_CHANNEL_KEY_FILE"
_FORMAT = 1


class KeyringError(Exception):
    """The encryption key is missing, unreadable or wrong; the message says what to do."""


class NoChannelKey(KeyringError):
    def __init__(self) -> None:
        super().__init__(
            "vendor credentials are stored encrypted and no key is configured: set "
            f"{KEY_ENV} to a Fernet key, or {KEY_FILE_ENV} to a file holding one (make one "
            'with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _parse_keys(text: str, source: str) -> list[Fernet]:
    keys = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not keys:
        raise KeyringError(f"{source} holds no key")
    out = []
    for index, key in enumerate(keys, 1):
        try:
            out.append(Fernet(key.encode()))
        except ValueError:
            raise KeyringError(
                f"{source}: key {index} is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return out


class CredentialCipher:
    """Encrypts credentials for the store and reads them back."""

    def __init__(self, keys: list[Fernet]) -> None:
        self._fernet = MultiFernet(keys)

    def __repr__(self) -> str:
        return "CredentialCipher(<keys hidden>)"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> CredentialCipher:
        """The cipher from ``PUSHGATE_CHANNEL_KEY`` or ``PUSHGATE_CHANNEL_KEY_FILE``."""
        if environ.get(KEY_ENV):
            return cls(_parse_keys(environ[KEY_ENV], KEY_ENV))
        path = environ.get(KEY_FILE_ENV)
        if path:
            try:
                text = Path(path).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyringError(
                    f"{KEY_FILE_ENV}: cannot read the key file ({type(exc).__name__})"
                ) from None
            return cls(_parse_keys(text, KEY_FILE_ENV))
        raise NoChannelKey()

    def encrypt(self, credentials: Credentials) -> bytes:
        document = {
            "format": _FORMAT,
            "vendor": credentials.vendor,
            "fields": reveal_for_storage(credentials),
        }
        return self._fernet.encrypt(json.dumps(document).encode())

    def decrypt(self, blob: bytes) -> Credentials:
        try:
            document = json.loads(self._fernet.decrypt(blob))
        except InvalidToken:
            raise KeyringError(
                "stored vendor credentials do not decrypt with the configured key(s): "
                f"was {KEY_ENV} changed without keeping the old key?"
            ) from None
        try:
            return parse_credentials(document["vendor"], document["fields"])
        except (KeyError, TypeError, ChannelConfigError) as exc:
            raise KeyringError(f"stored vendor credentials are malformed ({exc})") from None

    def rotate(self, blob: bytes) -> bytes:
        """`blob` re-encrypted under the first key (after a key rotation)."""
        return self._fernet.rotate(blob)

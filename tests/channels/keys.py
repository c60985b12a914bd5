"""Test keys, made once per run: an APNs-style .p8 key (EC P-256) and a
service-account RSA key, each with its PEM and public key."""

from __future__ import annotations

import functools
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

TEAM_ID = "TEAMID1234"
KEY_ID = "KEYID56789"
TOPIC = "com.example.app"
PROJECT_ID = "pushgate-test"
CLIENT_EMAIL = "pusher@pushgate-test.iam.gserviceaccount.com"


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def p8_pem() -> str:
    return _pem(ec_key())


def rsa_pem() -> str:
    return _pem(rsa_key())


def service_account(token_uri: str = "https://oauth2.googleapis.com/token") -> dict[str, str]:
    """A service-account JSON file's content, as Google issues it."""
    return {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": "0123456789abcdef",
        "private_key": rsa_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


def service_account_text(token_uri: str = "https://oauth2.googleapis.com/token") -> str:
    return json.dumps(service_account(token_uri))

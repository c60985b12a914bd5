"""An app's credentials for one vendor (CONTRACT §6 field names): parsed,
validated field by field, masked for listing, and serialised for encryption.

`parse_credentials(vendor, fields)` is the one way in: it raises
`ChannelConfigError` naming the first bad field (``private_key``,
``service_account.client_email``, ``endpoint``, ...) and never quoting its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .errors import ChannelConfigError, check_vendor
from .secret import Secret

APNS_HOSTS: Final = {
    "production": "https://api.push.apple.com",
    "development": "https://api.sandbox.push.apple.com",
}
FCM_ENDPOINT: Final = "https://fcm.googleapis.com"
FCM_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"
HUAWEI_ENDPOINT: Final = "https://push-api.cloud.huawei.com"
HUAWEI_AUTH_ENDPOINT: Final = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
XIAOMI_ENDPOINT: Final = "https://api.xmpush.xiaomi.com"
OPPO_ENDPOINT: Final = "https://api.push.oppomobile.com"
VIVO_ENDPOINT: Final = "https://api-push.vivo.com.cn"

_MAX_FIELD = 256  # any plain field
_MAX_KEY_PEM = 16_384  # a PEM private key (an RSA-4096 PKCS#8 PEM is ~3.3 KB)
_MAX_SERVICE_ACCOUNT = 32_768
_APPLE_ID = re.compile(r"[A-Z0-9]{10}")


@dataclass(frozen=True, slots=True)
class ApnsCredentials:
    team_id: str
    key_id: str
    private_key: Secret  # the .p8 file's PEM (EC P-256, PKCS#8)
    topic: str  # the app's bundle id
    environment: str  # production | development
    endpoint: str | None = None

    vendor = "apns"

    def base_url(self) -> str:
        return self.endpoint or APNS_HOSTS[self.environment]


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: Secret  # RSA PEM
    private_key_id: str
    token_uri: str


@dataclass(frozen=True, slots=True)
class FcmCredentials:
    service_account: ServiceAccount
    endpoint: str | None = None
    auth_endpoint: str | None = None  # where to POST the assertion; default the JSON's token_uri

    vendor = "fcm"


@dataclass(frozen=True, slots=True)
class HuaweiCredentials:
    app_id: str
    app_secret: Secret
    endpoint: str | None = None
    auth_endpoint: str | None = None

    vendor = "huawei"


@dataclass(frozen=True, slots=True)
class XiaomiCredentials:
    app_secret: Secret
    package_name: str
    endpoint: str | None = None

    vendor = "xiaomi"


@dataclass(frozen=True, slots=True)
class OppoCredentials:
    app_key: str
    master_secret: Secret
    endpoint: str | None = None
    auth_endpoint: str | None = None

    vendor = "oppo"


@dataclass(frozen=True, slots=True)
class VivoCredentials:
    app_id: str
    app_key: str
    app_secret: Secret
    endpoint: str | None = None
    auth_endpoint: str | None = None

    vendor = "vivo"


Credentials = (
    ApnsCredentials
    | FcmCredentials
    | HuaweiCredentials
    | XiaomiCredentials
    | OppoCredentials
    | VivoCredentials
)


class _Fields:
    """Reads one object's fields, naming each bad one with `prefix`."""

    def __init__(self, raw: Mapping[str, object], allowed: tuple[str, ...], prefix: str = ""):
        self._raw = raw
        self._prefix = prefix
        for name in raw:
            if name not in allowed:
                raise ChannelConfigError(self.name(str(name)), "unknown field")

    def name(self, field: str) -> str:
        return self._prefix + field

    def text(self, field: str, *, limit: int = _MAX_FIELD) -> str:
        value = self._raw.get(field)
        if value is None:
            raise ChannelConfigError(self.name(field), "missing field")
        if not isinstance(value, str) or not value.strip():
            raise ChannelConfigError(self.name(field), "must be a non-empty string")
        if len(value) > limit:
            raise ChannelConfigError(self.name(field), f"must be at most {limit} characters")
        return value

    def optional_text(self, field: str, default: str) -> str:
        return default if self._raw.get(field) is None else self.text(field)

    def url(self, field: str) -> str | None:
        if self._raw.get(field) is None:
            return None
        value = self.text(field)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChannelConfigError(self.name(field), "must be an http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ChannelConfigError(self.name(field), "must not carry a query or fragment")
        return value.rstrip("/")

    def choice(self, field: str, choices: tuple[str, ...]) -> str:
        value = self.text(field)
        if value not in choices:
            raise ChannelConfigError(self.name(field), f"must be one of {', '.join(choices)}")
        return value

    def secret(self, field: str) -> Secret:
        return Secret(self.text(field))

    def private_key(self, field: str, kind: str) -> Secret:
        pem = self.text(field, limit=_MAX_KEY_PEM)
        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            # The library's message could quote the key: say only what is wrong.
            raise ChannelConfigError(
                self.name(field), f"must be an unencrypted PEM {kind} private key"
            ) from None
        if kind == "EC P-256" and not (
            isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        ):
            raise ChannelConfigError(self.name(field), "must be an EC P-256 key (an APNs .p8 key)")
        if kind == "RSA" and not isinstance(key, rsa.RSAPrivateKey):
            raise ChannelConfigError(self.name(field), "must be an RSA private key")
        return Secret(pem)


_COMMON = ("endpoint", "auth_endpoint")


def _apns(f: _Fields) -> ApnsCredentials:
    team_id, key_id = f.text("team_id"), f.text("key_id")
    for name, value in (("team_id", team_id), ("key_id", key_id)):
        if not _APPLE_ID.fullmatch(value):
            raise ChannelConfigError(name, "must be Apple's 10-character identifier (A-Z, 0-9)")
    return ApnsCredentials(
        team_id=team_id,
        key_id=key_id,
        private_key=f.private_key("private_key", "EC P-256"),
        topic=f.text("topic"),
        environment=f.choice("environment", tuple(APNS_HOSTS)),
        endpoint=f.url("endpoint"),
    )


def _service_account(value: object) -> ServiceAccount:
    if isinstance(value, str):
        if len(value) > _MAX_SERVICE_ACCOUNT:
            raise ChannelConfigError("service_account", "is larger than a service-account file")
        try:
            value = json.loads(value)
        except ValueError:
            raise ChannelConfigError(
                "service_account", "must be the service-account JSON (an object or its text)"
            ) from None
    if not isinstance(value, Mapping):
        raise ChannelConfigError("service_account", "must be a JSON object")
    f = _Fields(value, tuple(str(k) for k in value), "service_account.")  # Google adds fields
    if f.text("type") != "service_account":
        raise ChannelConfigError("service_account.type", 'must be "service_account"')
    email = f.text("client_email")
    if "@" not in email:
        raise ChannelConfigError("service_account.client_email", "must be an email address")
    token_uri = f.url("token_uri") or FCM_TOKEN_URI
    return ServiceAccount(
        project_id=f.text("project_id"),
        client_email=email,
        private_key=f.private_key("private_key", "RSA"),
        private_key_id=f.optional_text("private_key_id", ""),
        token_uri=token_uri,
    )


def _fcm(f: _Fields, raw: Mapping[str, object]) -> FcmCredentials:
    if raw.get("service_account") is None:
        raise ChannelConfigError("service_account", "missing field")
    return FcmCredentials(
        service_account=_service_account(raw["service_account"]),
        endpoint=f.url("endpoint"),
        auth_endpoint=f.url("auth_endpoint"),
    )


def _huawei(f: _Fields) -> HuaweiCredentials:
    return HuaweiCredentials(
        app_id=f.text("app_id"),
        app_secret=f.secret("app_secret"),
        endpoint=f.url("endpoint"),
        auth_endpoint=f.url("auth_endpoint"),
    )


def _xiaomi(f: _Fields) -> XiaomiCredentials:
    return XiaomiCredentials(
        app_secret=f.secret("app_secret"),
        package_name=f.text("package_name"),
        endpoint=f.url("endpoint"),
    )


def _oppo(f: _Fields) -> OppoCredentials:
    return OppoCredentials(
        app_key=f.text("app_key"),
        master_secret=f.secret("master_secret"),
        endpoint=f.url("endpoint"),
        auth_endpoint=f.url("auth_endpoint"),
    )


def _vivo(f: _Fields) -> VivoCredentials:
    return VivoCredentials(
        app_id=f.text("app_id"),
        app_key=f.text("app_key"),
        app_secret=f.secret("app_secret"),
        endpoint=f.url("endpoint"),
        auth_endpoint=f.url("auth_endpoint"),
    )


_ALLOWED: Final[dict[str, tuple[str, ...]]] = {
    "apns": ("team_id", "key_id", "private_key", "topic", "environment", "endpoint"),
    "fcm": ("service_account", *_COMMON),
    "huawei": ("app_id", "app_secret", *_COMMON),
    "xiaomi": ("app_secret", "package_name", "endpoint"),
    "oppo": ("app_key", "master_secret", *_COMMON),
    "vivo": ("app_id", "app_key", "app_secret", *_COMMON),
}
_PARSERS: Final[dict[str, Callable[[_Fields], Credentials]]] = {
    "apns": _apns,
    "huawei": _huawei,
    "xiaomi": _xiaomi,
    "oppo": _oppo,
    "vivo": _vivo,
}


def parse_credentials(vendor: str, raw: object) -> Credentials:
    """`raw` (a JSON object as decoded) checked as `vendor`'s credentials."""
    check_vendor(vendor)
    if not isinstance(raw, Mapping):
        raise ChannelConfigError("body", "credentials must be a JSON object")
    f = _Fields(raw, _ALLOWED[vendor])
    if vendor == "fcm":
        return _fcm(f, raw)
    return _PARSERS[vendor](f)


def _plain(value: object, reveal: bool) -> object:
    if isinstance(value, Secret):
        return value.reveal() if reveal else value.masked()
    if isinstance(value, ServiceAccount):
        return {
            "type": "service_account",
            **{f.name: _plain(getattr(value, f.name), reveal) for f in fields(value)},
        }
    return value


def _as_dict(credentials: Credentials, reveal: bool) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(credentials):
        value = getattr(credentials, f.name)
        if value is not None:
            out[f.name] = _plain(value, reveal)
    return out


def masked_view(credentials: Credentials) -> dict[str, object]:
    """What `GET /v1/channels` shows: every field, each secret masked."""
    return {"vendor": credentials.vendor, **_as_dict(credentials, reveal=False)}


def reveal_for_storage(credentials: Credentials) -> dict[str, object]:
    """Every field in full, for `keyring.CredentialCipher.encrypt` only: `parse_credentials`
    reads it back."""
    return _as_dict(credentials, reveal=True)

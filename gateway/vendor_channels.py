"""The gateway's vendor channels: the encryption key, the stored credentials and the
`ChannelDirectory` they are loaded into (CONTRACT §6, docs/vendor-channels.md).

Credentials are stored encrypted (a Fernet blob per app and vendor) and
versioned by their `updated_at`; a node loads an app's channel the first time
it sends through it and again whenever the version it claims with is newer, so
a change made through any node reaches every node without a broadcast.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.channels import (
    ChannelDirectory,
    CredentialCipher,
    Credentials,
    GuardSettings,
    HttpOptions,
    KeyringError,
    RetryPolicy,
    masked_view,
)
from gateway.clock import Clock
from gateway.store import Store
from gateway.vendor_settings import VendorSettings

log = logging.getLogger("pushgate.vendor")


class ChannelKeyMissing(Exception):
    """No usable encryption key: credentials can be neither stored nor read."""


def _http_options(settings: VendorSettings) -> HttpOptions:
    context = settings.tls_context()
    return HttpOptions() if context is None else HttpOptions(verify=context)


def _guard_settings(settings: VendorSettings) -> GuardSettings:
    return GuardSettings(
        max_concurrent=settings.max_concurrent,
        failure_threshold=settings.breaker_failures,
        open_seconds=settings.breaker_seconds,
        retry=RetryPolicy(max_attempts=settings.retries),
    )


class VendorChannels:
    """Credentials in the store, channels in the directory; one per gateway process."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        environ: Mapping[str, str],
        settings: VendorSettings | None = None,
    ) -> None:
        settings = settings or VendorSettings()
        self.store = store
        self.cipher: CredentialCipher | None = None
        self.key_problem: str | None = None
        try:
            self.cipher = CredentialCipher.from_environment(environ)
        except KeyringError as exc:
            self.key_problem = str(exc)
        self.directory = ChannelDirectory(clock, _http_options(settings), _guard_settings(settings))
        self._versions: dict[tuple[str, str], int] = {}

    def _cipher(self) -> CredentialCipher:
        if self.cipher is None:
            raise ChannelKeyMissing(self.key_problem or "no channel key")
        return self.cipher

    async def aclose(self) -> None:
        await self.directory.aclose()

    async def put(self, app_id: str, credentials: Credentials) -> bool:
        """Store `credentials` encrypted; True if the app had none for that vendor."""
        blob = self._cipher().encrypt(credentials)
        created = await self.store.put_channel(app_id, credentials.vendor, blob)
        log.info("event=channel_set app=%s vendor=%s", app_id, credentials.vendor)
        return created

    async def delete(self, app_id: str, vendor: str) -> bool:
        removed = await self.store.delete_channel(app_id, vendor)
        self._versions.pop((app_id, vendor), None)
        await self.directory.remove(app_id, vendor)
        if removed:
            log.info("event=channel_deleted app=%s vendor=%s", app_id, vendor)
        return removed

    async def masked(self, app_id: str) -> list[dict[str, object]]:
        """Every channel of the app with each secret masked (`GET /v1/channels`)."""
        stored_channels = await self.store.list_channels(app_id)
        if not stored_channels:  # nothing to decrypt: no key needed
            return []
        cipher = self._cipher()
        out: list[dict[str, object]] = []
        for stored in stored_channels:
            view: dict[str, object] = {"vendor": stored.vendor}
            view.update(masked_view(cipher.decrypt(stored.blob)))
            view["updated_at"] = stored.updated_at
            out.append(view)
        return out

    async def ensure(self, app_id: str, vendor: str, version: int) -> None:
        """Have the directory send with the credentials of `version` (or newer).

        Raises ChannelKeyMissing or KeyringError when they cannot be read."""
        key = (app_id, vendor)
        if self._versions.get(key, -1) >= version and self.directory.configured(app_id, vendor):
            return
        stored = await self.store.get_channel(app_id, vendor)
        if stored is None:
            return
        credentials = self._cipher().decrypt(stored.blob)
        await self.directory.configure(app_id, credentials)
        self._versions[key] = stored.updated_at
        log.info("event=channel_loaded app=%s vendor=%s", app_id, vendor)

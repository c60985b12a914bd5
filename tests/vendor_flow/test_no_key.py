"""With no encryption key configured, credentials are refused with a clear error
(and nothing is stored); the rest of the API, and listing nothing, still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.channels.keys import service_account
from tests.harness import running_gateway


async def test_credentials_are_refused_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PUSHGATE_CHANNEL_KEY", raising=False)
    monkeypatch.delenv("PUSHGATE_CHANNEL_KEY_FILE", raising=False)
    async with running_gateway(tmp_path / "gw.db") as gw, gw.http() as client:
        answer = await client.put("/v1/channels/fcm", json={"service_account": service_account()})
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "channel_key_missing"
        assert "PUSHGATE_CHANNEL_KEY" in error["message"]
        assert "PRIVATE KEY" not in answer.text
        listed = await client.get("/v1/channels")
        assert listed.status_code == 200 and listed.json()["items"] == []
        # Bad input is still named before the key is needed.
        answer = await client.put("/v1/channels/fcm", json={"service_account": {}})
        assert answer.status_code == 400 and answer.json()["error"]["field"].startswith(
            "service_account"
        )

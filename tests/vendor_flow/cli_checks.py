"""`pushgate channels set|list|delete|policy` against a real `pushgate serve`: run by
test_routing.py on its gateway once its flows are done (one process start fewer)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from gateway.cli import main
from tests.channels.keys import KEY_ID, TEAM_ID, TOPIC, p8_pem, service_account_text
from tests.harness import APP, ServerProcess


def _run(server: ServerProcess, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--api", server.api, "--key", APP.api_key])


def check_channels_commands(server: ServerProcess, tmp_path: Path) -> None:
    """On APP, which has an fcm channel and no apns one."""
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_text(p8_pem())
    apns = ["channels", "set", "apns", "--field", f"team_id={TEAM_ID}"]
    apns += ["--field", f"key_id={KEY_ID}", "--field", f"private_key=@{key_file}"]
    apns += ["--field", f"topic={TOPIC}", "--field", "environment=production"]
    result = _run(server, *apns)
    assert result.exit_code == 0, result.output
    assert "apns channel created" in result.output
    sa_file = tmp_path / "sa.json"
    sa_file.write_text(service_account_text())
    result = _run(server, "channels", "set", "fcm", "--field", f"service_account=@{sa_file}")
    assert result.exit_code == 0 and "fcm channel replaced" in result.output, result.output

    result = _run(server, "channels", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["items"]
    assert [c["vendor"] for c in listed] == ["apns", "fcm"]
    assert listed[0]["team_id"] == TEAM_ID
    table = _run(server, "channels", "list").output
    for secret_line in p8_pem().splitlines()[1:-1]:
        assert secret_line not in result.output + table

    bad = _run(server, "channels", "set", "apns", "--field", f"team_id={TEAM_ID}")
    assert bad.exit_code == 1 and "HTTP 400" in bad.output and "field" in bad.output

    result = _run(server, "channels", "policy", "0")
    assert result.exit_code == 0 and "fallback_after_seconds=0" in result.output
    result = _run(server, "channels", "delete", "fcm")
    assert result.exit_code == 0 and "fcm channel deleted" in result.output
    missing = _run(server, "channels", "delete", "fcm")
    assert missing.exit_code == 1 and "HTTP 404" in missing.output

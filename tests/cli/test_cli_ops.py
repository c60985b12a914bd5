"""The operator CLI against a real `pushgate serve` child process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway.cli import main
from tests.harness import APP, OTHER_APP, ServerProcess, start_server_process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server_process(tmp_path_factory.mktemp("cli") / "cli.db")
    try:
        yield process
    finally:
        if process.process.poll() is None:
            assert process.terminate() == 0
        process.close()


def run(server: ServerProcess, *args: str, key: str = APP.api_key) -> Result:
    """`pushgate ARGS --api URL --key KEY` in-process."""
    return CliRunner().invoke(main, [*args, "--api", server.api, "--key", key])


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def run_json(server: ServerProcess, *args: str, key: str = APP.api_key) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(ok(run(server, *args, "--json", key=key)))
    return answer


def push(server: ServerProcess, target: str, *extra: str, key: str = APP.api_key) -> str:
    answer = run_json(
        server,
        "push",
        "simple",
        "--delivery-type",
        "android",
        "--target",
        target,
        "--title",
        "Hello",
        "--content",
        "World",
        *extra,
        key=key,
    )
    return str(answer["message_id"])


def test_push_simple_prints_the_message(server: ServerProcess) -> None:
    output = ok(
        run(
            server,
            "push",
            "simple",
            "--delivery-type",
            "ios",
            "--target",
            "cli-dev-1",
            "--title",
            "T",
            "--content",
            "C",
            "--msg-key",
            "cli-key-1",
            "--expired-seconds",
            "60",
            "--ext",
            "a=b",
        )
    )
    assert "cli-key-1" in output and "0 DeviceNotOnlineOrNoResponse" in output
    again = run_json(
        server,
        "push",
        "simple",
        "--delivery-type",
        "ios",
        "--target",
        "cli-dev-1",
        "--title",
        "T",
        "--content",
        "C",
        "--msg-key",
        "cli-key-1",
        "--expired-seconds",
        "60",
        "--ext",
        "a=b",
    )
    assert again["duplicate"] is True


def test_list_show_and_search(server: ServerProcess) -> None:
    first = push(server, "cli-dev-2", "--msg-key", "order-42")
    second = push(server, "cli-dev-3")
    listed = run_json(server, "messages", "list", "--limit", "2")
    assert [i["message_id"] for i in listed["items"]] == [second, first]
    table = ok(run(server, "messages", "list", "--limit", "2"))
    assert first in table and second in table and "Device ID_Android" in table
    if listed["next_cursor"]:
        assert "--cursor" in table
        rest = run_json(server, "messages", "list", "--cursor", listed["next_cursor"])
        assert first not in [i["message_id"] for i in rest["items"]]

    shown = ok(run(server, "messages", "show", first))
    for text in ("order-42", "DeviceNotOnlineOrNoResponse", "Expiry time", "cli-dev-2"):
        assert text in shown
    assert run_json(server, "messages", "show", first)["deliveries"][0]["device_id"] == "cli-dev-2"

    found = ok(run(server, "messages", "search", "--target", "cli-dev-2", "--msg-key", "order-42"))
    assert first in found
    missing = run(server, "messages", "search", "--target", "cli-dev-2", "--msg-key", "nope")
    assert missing.exit_code == 1 and "no message" in missing.output


def test_api_errors_exit_non_zero_with_the_error(server: ServerProcess) -> None:
    wrong_key = run(server, "messages", "list", key="wrong")
    assert wrong_key.exit_code == 1
    assert "HTTP 401 unauthorized" in wrong_key.output
    not_found = run(server, "messages", "show", "no-such-message")
    assert not_found.exit_code == 1 and "HTTP 404 not_found" in not_found.output
    bad_cursor = run(server, "messages", "list", "--cursor", "garbage")
    assert bad_cursor.exit_code == 1 and "(field cursor)" in bad_cursor.output
    other_app = run(server, "messages", "list", "--json", key=OTHER_APP.api_key)
    assert json.loads(other_app.output)["items"] == []


def test_unreachable_api_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main, ["messages", "list", "--api", "http://127.0.0.1:9", "--key", "k"]
    )
    assert result.exit_code == 1
    assert "cannot reach the API at http://127.0.0.1:9" in result.output


def test_status_codes(server: ServerProcess) -> None:
    assert len(run_json(server, "status-codes")["items"]) == 116
    fcm = ok(run(server, "status-codes", "--channel", "fcm"))
    assert "NotRegistered" in fcm and "WaitingForVerify" not in fcm


def test_load_push_reports_throughput(server: ServerProcess) -> None:
    simple = ok(run(server, "load", "push", "--count", "30", "--concurrency", "4"))
    assert "type=simple calls=30 errors=0 accepted=30" in simple
    assert "accepted_pushes_per_second=" in simple
    multiple = ok(
        run(
            server,
            "load",
            "push",
            "--type",
            "multiple",
            "--count",
            "3",
            "--concurrency",
            "2",
            "--targets",
            "50",
        )
    )
    assert "type=multiple calls=3 errors=0 accepted=150" in multiple


def test_the_installed_command_reads_the_environment(server: ServerProcess) -> None:
    newest = push(server, "env-dev")
    env = {**os.environ, "PUSHGATE_API_URL": server.api, "PUSHGATE_API_KEY": APP.api_key}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "messages", "list", "--json", "--limit", "1"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [i["message_id"] for i in json.loads(done.stdout)["items"]] == [newest]
    env["PUSHGATE_API_KEY"] = "wrong"
    failed = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "messages", "list"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert failed.returncode == 1 and b"unauthorized" in failed.stderr

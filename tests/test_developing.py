"""The README's test commands exist and select what they say they select."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import SAFETY_NET

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)^## ", README, re.S | re.M)
    assert match, f"no section {title!r} in the README"
    return match.group(1)


def shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, re.S)]


def test_the_quick_start_shows_the_two_commands() -> None:
    serve, test = shell_blocks(section("Quick start"))
    assert serve.endswith(".venv/bin/pushgate serve")
    assert test == "script/test"
    assert os.access(ROOT / "script" / "test", os.X_OK)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nexec script/test\n" in ci
    assert "PUSHGATE_REQUIRE_BROWSER=1" in ci


@pytest.mark.parametrize(
    "command",
    shell_blocks(section("Developing"))[0].splitlines(),
    ids=lambda c: c.split("#")[0].strip(),
)
def test_the_subset_commands_select_tests(command: str) -> None:
    args = command.split("#")[0].split()
    assert args[0] == ".venv/bin/pytest"
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*collect, *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SAFETY_NET * 3,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counted = re.search(r"^(?:(\d+)/)?(\d+) tests? collected", done.stdout, re.M)
    assert counted, done.stdout[-2000:]
    assert int(counted.group(1) or counted.group(2)) > 0, counted.group(0)

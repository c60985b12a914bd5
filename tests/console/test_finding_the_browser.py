"""How the browser tests find Chromium and its driver, on PATHs made of real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .browser import Browser, BrowserMissing, browser_required, find_browser

BROWSER_PY = Path(__file__).with_name("browser.py")


def executable(directory: Path, name: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_the_environment_variables_come_first(tmp_path: Path) -> None:
    on_path = tmp_path / "bin"
    executable(on_path, "chromium")
    executable(on_path, "chromedriver")
    chosen = executable(tmp_path / "mine", "chrome")
    driver = executable(tmp_path / "mine", "driver")
    environ = {"PATH": str(on_path), "PUSHGATE_CHROMIUM": chosen, "PUSHGATE_CHROMEDRIVER": driver}
    assert find_browser(environ) == Browser(chosen, driver)


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        (["google-chrome", "chromium-browser", "chromium"], "chromium"),
        (["google-chrome", "chromium-browser"], "chromium-browser"),
        (["google-chrome"], "google-chrome"),
    ],
)
def test_path_is_searched_in_order(tmp_path: Path, present: list[str], chosen: str) -> None:
    for name in present:
        executable(tmp_path, name)
    driver = executable(tmp_path, "chromedriver")
    found = find_browser({"PATH": str(tmp_path)})
    assert found == Browser(str(tmp_path / chosen), driver)


def test_a_missing_browser_or_driver_is_named(tmp_path: Path) -> None:
    with pytest.raises(BrowserMissing, match=r"^no browser \(chromium, .*\) and no chromedriver"):
        find_browser({"PATH": str(tmp_path)})
    executable(tmp_path, "chromium")
    with pytest.raises(BrowserMissing, match=r"^no chromedriver on PATH$"):
        find_browser({"PATH": str(tmp_path)})


def test_a_variable_naming_no_executable_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    executable(tmp_path, "chromium")
    executable(tmp_path, "chromedriver")
    not_executable = tmp_path / "plain-file"
    not_executable.write_text("")
    for value in (str(tmp_path / "absent"), str(not_executable)):
        environ = {"PATH": str(tmp_path), "PUSHGATE_CHROMEDRIVER": value}
        with pytest.raises(BrowserMissing, match=r"PUSHGATE_CHROMEDRIVER=.* is not an executable"):
            find_browser(environ)


@pytest.mark.parametrize(
    ("environ", "required"),
    [
        ({}, False),
        ({"CI": ""}, False),
        ({"CI": "false"}, False),
        ({"CI": "0"}, False),
        ({"CI": "true"}, True),
        ({"CI": "1"}, True),
        ({"PUSHGATE_REQUIRE_BROWSER": "1"}, True),
        ({"PUSHGATE_REQUIRE_BROWSER": "0"}, False),
    ],
)
def test_ci_or_the_variable_require_the_browser(environ: dict[str, str], required: bool) -> None:
    assert browser_required(environ) is required


def test_run_as_a_script_it_answers_with_its_exit_status(tmp_path: Path) -> None:
    """What script/test runs with the system Python before the virtualenv exists."""

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": str(path)}
        return subprocess.run(
            [sys.executable, str(BROWSER_PY)],
            env=environ,
            capture_output=True,
            text=True,
            timeout=30,
        )

    missing = run(tmp_path)
    assert missing.returncode == 1
    assert missing.stdout.startswith("browser: missing: no browser")
    executable(tmp_path, "chromium-browser")
    executable(tmp_path, "chromedriver")
    found = run(tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout == (
        f"browser: {tmp_path / 'chromium-browser'}, driver: {tmp_path / 'chromedriver'}\n"
    )

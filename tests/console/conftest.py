"""Console fixtures: one real gateway child process and one headless Chromium per module.

The gateway runs as `pushgate serve` in a child process (real clock, real
ports), so the blocking WebDriver calls never stall its event loop.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver

from tests.harness import APP, OTHER_APP, ServerProcess, start_server_process

from .page import LAPTOP, Console, new_profile, require_browser, start_browser


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check for the browser before any fixture starts: a skip raised here (not in a
    fixture) keeps one location, so the summary folds it into one line for all."""
    if "browser" in item.fixturenames:
        require_browser()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("console") / "gw.db"
    process = start_server_process(db, apps=(APP, OTHER_APP))
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.terminate()
        process.close()


@pytest.fixture(scope="module")
def browser(server: ServerProcess) -> Iterator[webdriver.Chrome]:
    """Started after the gateway and closed before it: open keep-alive connections
    would otherwise hold the gateway's graceful shutdown for its grace period."""
    found = require_browser()
    profile = new_profile()
    driver = start_browser(found, profile)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def console(browser: webdriver.Chrome, server: ServerProcess) -> Iterator[Console]:
    """The console at laptop size; the test fails on any unexpected browser error."""
    page = Console(browser, server.api)
    page.set_window(LAPTOP)
    page.browser_errors()  # drop what earlier tests left
    yield page
    # Expected: the 401 of a wrong key; the favicon a plain-text page asks for.
    errors = [
        e for e in page.browser_errors() if "status of 401" not in e and "favicon.ico" not in e
    ]
    assert errors == [], f"errors in the browser console: {errors}"


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    """The management API of app1, as the application server would call it."""
    with httpx.Client(
        base_url=server.api, headers={"authorization": f"Bearer {APP.api_key}"}, timeout=10.0
    ) as client:
        yield client

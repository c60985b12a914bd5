"""Drive the web console in headless Chromium through its ChromeDriver (Selenium).

Nothing here downloads a browser: `browser.find_browser` finds the one the
user has (Debian's `chromium` and `chromium-driver`, which script/test
installs where it may), and the driver's path is always given to Selenium,
so its Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.harness import APP

from .browser import INSTALL_HINT, Browser, BrowserMissing, browser_required, find_browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "console"
DOCS = ROOT / "docs"
LAPTOP = (1280, 860)
PHONE = (390, 844)
# Safety net of every wait on the page (it polls the API every 3 s): generous, since a
# headless browser on a busy machine is slow.
BROWSER_WAIT = 45.0
# Flags for running as root on a machine with no network beyond loopback.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

T = TypeVar("T")


def require_browser() -> Browser:
    """The browser and its driver. Missing: a failure in CI or with
    PUSHGATE_REQUIRE_BROWSER=1 (never a skip there), else one skip reason for all."""
    try:
        return find_browser()
    except BrowserMissing as missing:
        message = f"browser tests not run: {missing}; {INSTALL_HINT}"
        if browser_required():
            required = "(required in CI and with PUSHGATE_REQUIRE_BROWSER=1)"
            pytest.fail(f"{message} {required}", pytrace=False)
        pytest.skip(message)


def start_browser(browser: Browser, profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(browser.chromedriver))
    driver.set_page_load_timeout(BROWSER_WAIT)
    driver.set_script_timeout(BROWSER_WAIT)
    return driver


def new_profile() -> Path:
    return Path(tempfile.mkdtemp(prefix="pushgate-chromium-"))


class Console:
    """The console page of one gateway, as an operator sees it."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url.rstrip("/")

    # --- navigation -----------------------------------------------------------------

    def open(self) -> None:
        """A fresh page with an empty session (nobody signed in)."""
        # Clear the tab's session on a page of the same origin that runs no script.
        self.driver.get(self.base_url + "/vendor/LICENSE")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.base_url + "/")
        self.wait(lambda: self.visible("signin"), "the sign-in form")

    def sign_in(self, app_id: str, api_key: str, *, ok: bool = True) -> None:
        self.fill("signin-app", app_id)
        self.fill("signin-key", api_key)
        self.by_id("signin-submit").click()
        if ok:
            self.wait(lambda: self.visible("console"), "the console after sign-in")
            self.wait(lambda: self.text("stat-today") != "–", "the live numbers")

    def tab(self, name: str) -> None:
        self.by_id(f"tab-{name}").click()
        self.wait(lambda: self.visible(f"panel-{name}"), f"the {name} tab")

    def set_window(self, size: tuple[int, int]) -> None:
        self.driver.set_window_size(*size)

    # --- elements -----------------------------------------------------------------------

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def visible(self, element_id: str) -> bool:
        return self.by_id(element_id).is_displayed()

    def text(self, element_id: str) -> str:
        return str(self.by_id(element_id).text)

    def fill(self, element_id: str, value: str) -> None:
        element = self.by_id(element_id)
        element.clear()
        element.send_keys(value)

    def select(self, element_id: str, value: str) -> None:
        Select(self.by_id(element_id)).select_by_value(value)

    def js(self, script: str, *args: object) -> Any:
        return self.driver.execute_script(script, *args)

    def wait(self, condition: Callable[[], T], what: str, timeout: float = BROWSER_WAIT) -> T:
        try:
            result: T = WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda _: condition()
            )
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None
        return result

    # --- the message list -------------------------------------------------------------

    def row(self, message_id: object) -> WebElement | None:
        found: WebElement | None = self.js(
            "return [...document.querySelectorAll('#messages-body tr.row')]"
            ".find(r => r.dataset.messageId === arguments[0]) || null",
            message_id,
        )
        return found

    def row_ids(self) -> list[str]:
        ids: list[str] = self.js(
            "return [...document.querySelectorAll('#messages-body tr.row')]"
            ".map(r => r.dataset.messageId)"
        )
        return ids

    def row_cells(self, message_id: object) -> list[str]:
        row = self.wait(lambda: self.row(message_id), f"the row of {message_id}")
        return [str(td.text) for td in row.find_elements(By.TAG_NAME, "td")]

    def refresh_until_row(self, message_id: object) -> WebElement:
        self.by_id("refresh").click()
        return self.wait(lambda: self.row(message_id), f"the row of {message_id}")

    def expand(self, message_id: object) -> None:
        row = self.wait(lambda: self.row(message_id), f"the row of {message_id}")
        button = row.find_element(By.CSS_SELECTOR, "button.expand")
        if button.get_attribute("aria-expanded") != "true":
            button.click()
        self.wait(lambda: self.details(message_id) is not None, f"details of {message_id}")

    def details(self, message_id: object) -> dict[str, Any] | None:
        """The expanded details of a row as shown, or None until loaded."""
        found: dict[str, Any] | None = self.js(
            """
            const row = [...document.querySelectorAll('#messages-body tr.details-row')]
              .find(r => r.dataset.messageId === arguments[0]);
            if (!row || row.hidden) return null;
            const box = row.querySelector('.details');
            if (!box.dataset.loaded) return null;
            const field = (name) => box.querySelector(`[data-field="${name}"]`);
            const terms = [...box.querySelectorAll('dt')].map(d => d.textContent);
            return {
              terms,
              message_id: field('message_id').textContent,
              status: Number(field('status').querySelector('.status').dataset.status),
              status_text: field('status').innerText,
              status_name: field('status_name').textContent,
              expires_at: field('expires_at').textContent,
              modified_at: field('modified_at').textContent,
              deliveries: [...box.querySelectorAll('table.deliveries tbody tr')].map(tr => ({
                device_id: tr.dataset.deviceId,
                status: Number(tr.querySelector('.status').dataset.status),
              })),
              text: box.innerText,
            };
            """,
            message_id,
        )
        return found

    def wait_status(
        self, message_id: object, status: int, timeout: float = BROWSER_WAIT
    ) -> dict[str, Any]:
        def shown() -> dict[str, Any] | None:
            details = self.details(message_id)
            return details if details and details["status"] == status else None

        return self.wait(shown, f"status {status} in the details of {message_id}", timeout)

    # --- evidence -----------------------------------------------------------------------

    def screenshot(self, name: str, *, docs_name: str | None = None) -> Path:
        """Save artifacts/console/NAME.png; with docs_name, refresh docs/DOCS_NAME too.

        docs/ holds committed pictures, so they are rewritten only when missing
        or when PUSHGATE_UPDATE_DOCS=1 (a test run must not dirty the tree).
        """
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), path
        if docs_name is not None:
            target = DOCS / docs_name
            if not target.exists() or os.environ.get("PUSHGATE_UPDATE_DOCS") == "1":
                DOCS.mkdir(exist_ok=True)
                shutil.copyfile(path, target)
        return path

    def browser_errors(self) -> list[str]:
        """SEVERE browser console entries since the last call (JS errors, CSP, failed loads)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return [str(e["message"]) for e in entries if e.get("level") == "SEVERE"]

    def horizontal_overflow(self) -> int:
        overflow: int = self.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        return overflow


# --- flows shared by the tests ----------------------------------------------------------


def push(api: httpx.Client, target: str, **fields: Any) -> dict[str, Any]:
    body = {"delivery_type": "android", "target_id": target, "title": "t", "content": "c"}
    response = api.post("/v1/push/simple", json={**body, **fields})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def details(api: httpx.Client, message_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def to_second(iso: str) -> str:
    return iso[:19].replace("T", " ")


def connect_test_device(console: Console, device_id: str, platform: str = "android") -> None:
    console.tab("test")
    console.fill("dev-id", device_id)
    console.select("dev-platform", platform)
    console.fill("dev-secret", APP.secret)
    console.by_id("dev-connect").click()
    console.wait(
        lambda: console.by_id("dev-state").get_attribute("data-state") == "online",
        f"the test device {device_id} online",
    )


def received(console: Console, message_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = console.js(
        """
        const li = [...document.querySelectorAll('#dev-pushes li')]
          .find(l => l.dataset.id === arguments[0]);
        return li ? {acked: li.dataset.acked === 'true', text: li.innerText} : null;
        """,
        message_id,
    )
    return found


def wait_acked_in_page(console: Console, message_id: str) -> dict[str, Any]:
    def acked() -> dict[str, Any] | None:
        item = received(console, message_id)
        return item if item and item["acked"] else None

    return console.wait(acked, f"the test device to receive and ack {message_id}")

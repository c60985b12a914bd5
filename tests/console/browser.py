"""Find the Chromium and ChromeDriver a user already has; never download one.

Looked for in this order: `PUSHGATE_CHROMIUM` / `PUSHGATE_CHROMEDRIVER`, then
`chromium`, `chromium-browser`, `google-chrome` and `chromedriver` on PATH.
Standard library only: `script/test` runs this file with the system Python,
before the virtual environment exists, to decide whether to install them
(`python3 tests/console/browser.py` prints what it found, or why not, and
exits 1 when something is missing).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAME = "chromedriver"
INSTALL_HINT = (
    "script/test installs Debian's chromium and chromium-driver where apt-get may be used, "
    "or set PUSHGATE_CHROMIUM and PUSHGATE_CHROMEDRIVER"
)


@dataclass(frozen=True)
class Browser:
    chromium: str
    chromedriver: str


class BrowserMissing(Exception):
    """No usable browser or driver; the message says which and how to get one."""


def _from_env(environ: Mapping[str, str], variable: str) -> str | None:
    path = environ.get(variable)
    if not path:
        return None
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise BrowserMissing(f"{variable}={path} is not an executable file")
    return path


def find_browser(environ: Mapping[str, str] = os.environ) -> Browser:
    search_path = environ.get("PATH", os.defpath)
    chromium = _from_env(environ, "PUSHGATE_CHROMIUM")
    if chromium is None:
        found = (shutil.which(name, path=search_path) for name in BROWSER_NAMES)
        chromium = next((path for path in found if path), None)
    driver = _from_env(environ, "PUSHGATE_CHROMEDRIVER") or shutil.which(
        DRIVER_NAME, path=search_path
    )
    missing = []
    if chromium is None:
        missing.append(f"no browser ({', '.join(BROWSER_NAMES)})")
    if driver is None:
        missing.append(f"no {DRIVER_NAME}")
    if chromium is None or driver is None:
        raise BrowserMissing(f"{' and '.join(missing)} on PATH")
    return Browser(chromium, driver)


def browser_required(environ: Mapping[str, str] = os.environ) -> bool:
    """In CI, or with PUSHGATE_REQUIRE_BROWSER=1, a missing browser fails the run."""
    ci = environ.get("CI", "").strip().lower()
    return ci not in ("", "0", "false", "no") or environ.get("PUSHGATE_REQUIRE_BROWSER") == "1"


def main() -> int:
    try:
        browser = find_browser()
    except BrowserMissing as missing:
        print(f"browser: missing: {missing}")
        return 1
    print(f"browser: {browser.chromium}, driver: {browser.chromedriver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real Chromium for the browser tests: Debian's ``chromium`` driven by
``chromedriver`` through selenium.

:func:`find_browser` says where the browser and its driver are (or why there
are none); :func:`start_chromium` starts a headless one with a fresh profile and
a download directory of its own; :class:`Artifacts` saves screenshots (and
the page's HTML) under ``$AIOUWS_ARTIFACTS`` or ``tests/browser/artifacts/``,
one subdirectory per test run, so that a CI run can keep them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

__all__ = [
    "ARTIFACTS_DEFAULT",
    "Artifacts",
    "Browser",
    "find_browser",
    "start_chromium",
    "wait_until",
]

ARTIFACTS_DEFAULT = Path(__file__).resolve().parent / "artifacts"
#: Where Debian (and most distributions) put the browser and its driver.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)
SYSTEM_PATH = "/usr/bin:/usr/lib/chromium"
INSTALL_HINT = (
    "no Chromium for the browser tests: install Debian's chromium and "
    "chromium-driver (apt-get install chromium chromium-driver; .ci/run does "
    "this as root)"
)
#: A laptop screen, and the phone width of the issue.
LAPTOP = (1280, 900)
PHONE = (390, 844)

T = TypeVar("T")


@dataclass(frozen=True)
class Browser:
    """Where the browser and its driver are."""

    binary: str
    driver: str


def _which(names: tuple[str, ...], env: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in names:
        found = shutil.which(name) or shutil.which(name, path=SYSTEM_PATH)
        if found:
            return found
    return None


def find_browser() -> Browser | str:
    """The browser and driver found (``AIOUWS_CHROMIUM``/``AIOUWS_CHROMEDRIVER``
    name others), or why there are none: the message to skip the tests with."""
    binary = _which(BROWSER_NAMES, "AIOUWS_CHROMIUM")
    driver = _which(DRIVER_NAMES, "AIOUWS_CHROMEDRIVER")
    if binary is None or driver is None:
        pairs = (("chromium", binary), ("chromedriver", driver))
        missing = [name for name, path in pairs if not path]
        return f"{INSTALL_HINT}; missing: {', '.join(missing)}"
    return Browser(binary=binary, driver=driver)


def start_chromium(
    browser: Browser, profile: Path, downloads: Path, size: tuple[int, int] = LAPTOP
) -> WebDriver:
    """A headless Chromium with a fresh profile in ``profile``, saving downloads
    into ``downloads`` without asking, its window ``size`` CSS pixels."""
    options = webdriver.ChromeOptions()
    options.binary_location = browser.binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    # The page's console (errors, CSP violations), for the tests to read.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=browser.driver)
    )
    # Headless Chromium saves downloads only when told where, through DevTools.
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior",
        {"behavior": "allow", "downloadPath": str(downloads)},
    )
    driver.set_page_load_timeout(60)
    set_viewport(driver, size)
    return driver


#: The viewport each browser (by session) was given, to come back to.
_VIEWPORTS: dict[str, tuple[int, int]] = {}


def set_viewport(
    driver: WebDriver, size: tuple[int, int], *, keep: bool = True
) -> None:
    """Make the page's viewport (not the window) ``size`` CSS pixels (a phone's
    below 600 wide); ``keep``: the size screenshots come back to."""
    if keep:
        _VIEWPORTS[driver.session_id] = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": size[0],
            "height": size[1],
            "deviceScaleFactor": 1,
            "mobile": size[0] < 600,
        },
    )


def wait_until(
    probe: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition"
) -> T:
    """Poll ``probe`` every 50 ms until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Artifacts:
    """Screenshots and page sources saved by a test run."""

    root: Path
    saved: list[Path] = field(default_factory=list)

    @classmethod
    def for_run(cls) -> Artifacts:
        base = Path(os.environ.get("AIOUWS_ARTIFACTS") or ARTIFACTS_DEFAULT)
        root = base / time.strftime("run-%Y%m%dT%H%M%S")
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def screenshot(self, driver: WebDriver, name: str) -> Path:
        """Save the whole page (not only the viewport) as ``name.png`` and its
        current HTML as ``name.html``."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")
        path = self.root / f"{slug}.png"
        width, height = _VIEWPORTS.get(driver.session_id, LAPTOP)
        full = driver.execute_script("return document.documentElement.scrollHeight;")
        set_viewport(driver, (width, min(max(full, height), 6000)), keep=False)
        try:
            path.write_bytes(driver.get_screenshot_as_png())
        finally:
            set_viewport(driver, (width, height))
        (self.root / f"{slug}.html").write_text(driver.page_source)
        self.saved.append(path)
        return path

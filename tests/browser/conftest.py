"""Browser fixtures: a real headless Chromium (selenium + Debian's chromedriver)
against a real ``python -m taprunner serve`` on a fresh database.

``chromium`` is one browser per test module at laptop size (``phone_chromium``
a second one at 390 x 844); ``web_server`` one server per module with the
5,000-star demo catalogue; ``artifacts`` saves screenshots for the whole run
(``$AIOUWS_ARTIFACTS``, else ``tests/browser/artifacts/run-*``). Without a
browser the tests are skipped with what to install.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from browserkit import (  # noqa: E402
    LAPTOP,
    PHONE,
    Artifacts,
    Browser,
    find_browser,
    start_chromium,
)
from liveserver import (  # noqa: E402
    LiveServer,
    create_database,
    drop_database,
    start_server,
)
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="session")
def browser() -> Browser:
    found = find_browser()
    if isinstance(found, str):
        pytest.skip(found)
    return found


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    return Artifacts.for_run()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _screenshot_of_a_failure(
    request: pytest.FixtureRequest, artifacts: Artifacts
) -> Iterator[None]:
    """A failed test that used a browser leaves a screenshot of its last page."""
    drivers = {
        name: request.getfixturevalue(name)
        for name in ("chromium", "phone_chromium")
        if name in request.fixturenames
    }
    yield
    if not request.node.stash.get(_FAILED, False):
        return
    for name, driver in drivers.items():
        try:
            artifacts.screenshot(driver, f"FAILED-{request.node.name}-{name}")
        except Exception as exc:  # noqa: BLE001 - the failure matters more
            print(f"no screenshot of the failure: {exc}")


def _chromium(
    browser: Browser, tmp: pytest.TempPathFactory, size: tuple[int, int]
) -> tuple[WebDriver, Path]:
    downloads = tmp.mktemp("downloads")
    return start_chromium(browser, tmp.mktemp("profile"), downloads, size), downloads


@pytest.fixture(scope="module")
def chromium_and_downloads(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WebDriver, Path]]:
    driver, downloads = _chromium(browser, tmp_path_factory, LAPTOP)
    yield driver, downloads
    driver.quit()


@pytest.fixture
def chromium(chromium_and_downloads: tuple[WebDriver, Path]) -> WebDriver:
    """The module's Chromium at laptop size."""
    return chromium_and_downloads[0]


@pytest.fixture
def downloads(chromium_and_downloads: tuple[WebDriver, Path]) -> Path:
    """The directory the module's Chromium saves downloads into."""
    return chromium_and_downloads[1]


@pytest.fixture(scope="module")
def phone_chromium(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebDriver]:
    """A second Chromium with a phone's viewport (390 x 844)."""
    driver, _ = _chromium(browser, tmp_path_factory, PHONE)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def web_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    dsn = create_database(pg_admin_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="module")
def web_server(
    browser: Browser, web_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real server with the demo catalogue (started only when a browser is
    there). Two slots, so that a slow job and a quick one run side by side."""
    server = start_server(
        web_dsn,
        tmp_path_factory.mktemp("web-server"),
        env={"AIOUWS_WAIT_CAP": "30"},
    )
    yield server
    server.stop()

"""The harness itself: Chromium starts, loads the service's root page from a
real server, saves a screenshot, and downloads into its own directory."""

from __future__ import annotations

from pathlib import Path

from browserkit import Artifacts, wait_until
from liveserver import LiveServer
from selenium.webdriver.remote.webdriver import WebDriver


def test_chromium_loads_the_root_page_and_saves_a_screenshot(
    chromium: WebDriver, web_server: LiveServer, artifacts: Artifacts
) -> None:
    chromium.get(web_server.url + "/")
    assert chromium.execute_script("return document.readyState") == "complete"
    assert chromium.find_element("tag name", "body").text.strip()
    shot = artifacts.screenshot(chromium, "00-root-page")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 1000


def test_downloads_land_in_the_browsers_own_directory(
    chromium: WebDriver, web_server: LiveServer, downloads: Path
) -> None:
    chromium.get(web_server.url + "/")
    # An <a download> click: Chromium saves it without asking.
    chromium.execute_script(
        "const a = document.createElement('a');"
        "a.href = arguments[0]; a.download = 'caps.xml';"
        "document.body.appendChild(a); a.click();",
        web_server.url + "/tap/capabilities",
    )
    saved = wait_until(
        lambda: [p for p in downloads.iterdir() if p.name == "caps.xml"],
        timeout=20,
        what="caps.xml in the download directory",
    )
    assert b"capabilities" in saved[0].read_bytes()

"""A job page follows its job in a real browser: the phase changes to
COMPLETED without the page reloading (uws.js and UWS WAIT)."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request

from browserkit import Artifacts, wait_until
from liveserver import LiveServer
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

#: A query that runs a few seconds on the 5,000-star demo table.
SLOWISH = (
    "SELECT COUNT(*) AS n FROM demo.stars AS a, demo.stars AS b"
    " WHERE a.ra + b.ra < -1"
)


def create_job(server: LiveServer, query: str) -> str:
    """A PENDING TAP job of ``query`` (created as pyvo would): its URL."""
    form = urllib.parse.urlencode({"LANG": "ADQL", "QUERY": query}).encode()
    with urllib.request.urlopen(server.tap_url + "/async", data=form) as response:
        return str(response.url)


def test_the_phase_follows_the_job_without_a_reload(
    chromium: WebDriver, web_server: LiveServer, artifacts: Artifacts
) -> None:
    job_url = create_job(web_server, SLOWISH)
    chromium.get(job_url)
    phase = chromium.find_element(By.ID, "job-phase")
    assert phase.text == "PENDING"
    chromium.execute_script("window.notReloaded = 42;")
    print(chromium.get_log("browser"))
    print(chromium.page_source[:3000])
    wait_until(
        lambda: chromium.execute_script("return window.uwsPage && window.uwsPage.watching"),
        timeout=10,
        what="uws.js watching the job",
    )
    artifacts.screenshot(chromium, "job-pending")
    form = urllib.parse.urlencode({"PHASE": "RUN"}).encode()
    started = time.monotonic()
    urllib.request.urlopen(job_url + "/phase", data=form).close()
    wait_until(
        lambda: chromium.find_element(By.ID, "job-phase").text == "COMPLETED",
        timeout=60,
        what="COMPLETED on the page",
    )
    took = time.monotonic() - started
    assert chromium.execute_script("return window.notReloaded") == 42
    assert chromium.execute_script("return window.uwsPage.updates") >= 1
    artifacts.screenshot(chromium, "job-completed")
    print(f"page showed COMPLETED {took:.2f} s after RUN")

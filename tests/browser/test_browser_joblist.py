"""A signed-in astronomer's job list in a real Chromium follows the jobs: a row
still executing turns COMPLETED without a reload. The server believes the user
header from loopback (``auth = "header"``, as behind deploy/nginx.conf); the
browser sends it on every request (DevTools), as a proxy in front would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browserkit import Artifacts, wait_until
from liveserver import LiveServer, start_server
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from webpages import (
    SLOW_WITH_POSITIONS,
    mark_page,
    page_marked,
    submit_query,
    wait_phase,
)


@pytest.fixture(scope="module")
def header_server(
    browser: object, web_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    server = start_server(
        web_dsn,
        tmp_path_factory.mktemp("header-server"),
        env={"AIOUWS_AUTH": "header", "AIOUWS_WAIT_CAP": "30"},
    )
    yield server
    server.stop()


def row_phase(driver: WebDriver, job_id: str) -> str:
    return str(
        driver.execute_script(
            "const r = document.querySelector("
            "  `#job-list tr.job[data-job-id='${arguments[0]}']`);"
            "return r ? r.dataset.phase : '';",
            job_id,
        )
    )


def test_the_job_list_follows_a_running_job(
    chromium: WebDriver, header_server: LiveServer, artifacts: Artifacts
) -> None:
    chromium.execute_cdp_cmd("Network.enable", {})
    chromium.execute_cdp_cmd(
        "Network.setExtraHTTPHeaders", {"headers": {"X-Remote-User": "astro"}}
    )
    try:
        submit_query(chromium, header_server.url, SLOW_WITH_POSITIONS, "submit-async")
        wait_phase(chromium, "QUEUED", "EXECUTING", timeout=30)
        job_id = chromium.find_element(By.ID, "job").get_attribute("data-job-id")
        chromium.get(header_server.tap_url + "/async")
        assert row_phase(chromium, job_id) in ("QUEUED", "EXECUTING")
        mark_page(chromium)
        artifacts.screenshot(chromium, "11-job-list-executing")
        wait_until(
            lambda: row_phase(chromium, job_id) == "COMPLETED",
            timeout=90,
            what="the row to turn COMPLETED",
        )
        assert page_marked(chromium), "the page was reloaded"
        artifacts.screenshot(chromium, "12-job-list-completed")
    finally:
        chromium.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        chromium.execute_cdp_cmd("Network.disable", {})

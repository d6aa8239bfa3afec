"""The pages at a phone's width (390 x 844 CSS pixels) in a real Chromium: no
horizontal scroll on any of them, and the main controls reachable with the
keyboard alone (Tab reaches the editor, then the submit button; a job can be
submitted and followed without a mouse)."""

from __future__ import annotations

import pytest
from browserkit import Artifacts
from liveserver import LiveServer
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from webpages import (
    FAST_WITH_POSITIONS,
    focus_path,
    horizontal_overflow,
    submit_query,
    wait_phase,
)

#: Pages below the server's root, by the screenshot name they get.
PAGES = {
    "phone-01-query": "/",
    "phone-02-tables": "/tap/tables",
    "phone-03-table": "/tap/tables/demo.stars",
    "phone-04-capabilities": "/tap/capabilities",
    "phone-05-examples": "/tap/examples",
    "phone-06-availability": "/tap/availability",
    "phone-07-jobs": "/tap/async",
}


def test_the_viewport_is_a_phones(
    phone_chromium: WebDriver, web_server: LiveServer
) -> None:
    phone_chromium.get(web_server.url + "/")
    assert phone_chromium.execute_script("return window.innerWidth") == 390


@pytest.mark.parametrize("name", sorted(PAGES))
def test_no_page_scrolls_sideways_at_phone_width(
    phone_chromium: WebDriver, web_server: LiveServer, artifacts: Artifacts, name: str
) -> None:
    phone_chromium.get(web_server.url + PAGES[name])
    assert phone_chromium.find_element(By.ID, "main").is_displayed()
    artifacts.screenshot(phone_chromium, name)
    assert horizontal_overflow(phone_chromium) == 0


def test_a_completed_job_page_fits_a_phone(
    phone_chromium: WebDriver, web_server: LiveServer, artifacts: Artifacts
) -> None:
    submit_query(phone_chromium, web_server.url, FAST_WITH_POSITIONS, "submit-async")
    wait_phase(phone_chromium, "COMPLETED")
    sky = phone_chromium.find_element(By.CSS_SELECTOR, "#sky-plot svg")
    assert sky.size["width"] <= 390
    artifacts.screenshot(phone_chromium, "phone-08-job-completed")
    assert horizontal_overflow(phone_chromium) == 0
    # The wide preview scrolls inside its own box, not the page.
    preview = phone_chromium.find_element(By.ID, "preview")
    assert preview.size["width"] > 0


def test_tab_reaches_the_editor_then_the_submit_button(
    phone_chromium: WebDriver, web_server: LiveServer
) -> None:
    phone_chromium.get(web_server.url + "/")
    path = focus_path(phone_chromium, 40)
    assert "textarea#query" in path, path
    assert "button#submit-async" in path, path
    assert path.index("textarea#query") < path.index("select#format")
    assert path.index("select#format") < path.index("button#submit-async")
    # The skip link comes first: one Tab and Enter jump over the navigation.
    assert path[0].startswith("a:Skip"), path


def test_a_job_is_submitted_and_followed_with_the_keyboard_alone(
    phone_chromium: WebDriver, web_server: LiveServer, artifacts: Artifacts
) -> None:
    phone_chromium.get(web_server.url + "/")
    path = focus_path(phone_chromium, 40)
    presses = path.index("textarea#query") + 1
    focus_path(phone_chromium, presses)
    editor = phone_chromium.switch_to.active_element
    assert editor.get_attribute("id") == "query"
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(FAST_WITH_POSITIONS, Keys.ESCAPE)
    for _ in range(path.index("button#submit-async") - path.index("textarea#query")):
        phone_chromium.switch_to.active_element.send_keys(Keys.TAB)
    button = phone_chromium.switch_to.active_element
    assert button.get_attribute("id") == "submit-async"
    button.send_keys(Keys.ENTER)
    wait_phase(phone_chromium, "COMPLETED")
    job_path = focus_path(phone_chromium, 60)
    assert "button" in " ".join(job_path)
    assert any(p.startswith("a:") and p.endswith(".vot") for p in job_path), job_path
    artifacts.screenshot(phone_chromium, "phone-09-job-by-keyboard")

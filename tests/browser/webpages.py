"""Steps the browser tests share: reading the page in one go (the job page's
script swaps elements), typing a query, waiting for a phase, keyboard focus."""

from __future__ import annotations

import time
from pathlib import Path

from browserkit import wait_until
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

__all__ = [
    "FAST_WITH_POSITIONS",
    "SLOW",
    "SLOW_ERROR",
    "SLOW_WITH_POSITIONS",
    "csp_violations",
    "downloaded",
    "focus_path",
    "horizontal_overflow",
    "mark_page",
    "page_marked",
    "phase_shown",
    "submit_query",
    "wait_phase",
]

#: Bright stars after a scalar subquery that takes seconds (a 5,000 x 5,000
#: cross join counting nothing): the job page is open before it completes.
SLOW_WITH_POSITIONS = (
    "SELECT TOP 300 s.id, s.ra, s.dec, s.mag FROM demo.stars AS s\n"
    "WHERE s.mag < 14 + (SELECT COUNT(*) FROM demo.stars AS a, demo.stars AS b\n"
    "                    WHERE a.ra + b.ra < -1)\n"
    "ORDER BY s.mag"
)
FAST_WITH_POSITIONS = "SELECT TOP 50 id, ra, dec, mag FROM demo.stars ORDER BY id"
#: Divides by zero after the same seconds-long subquery: ERROR at run time.
SLOW_ERROR = (
    "SELECT TOP 5 s.id / (SELECT COUNT(*) FROM demo.stars AS a, demo.stars AS b\n"
    "                     WHERE a.ra + b.ra < -1) AS boom\n"
    "FROM demo.stars AS s"
)
#: A three-way cross join: runs for minutes unless aborted.
SLOW = (
    "SELECT a.id FROM demo.stars AS a, demo.stars AS b, demo.stars AS c\n"
    "WHERE a.ra + b.ra + c.ra < -3"
)


def phase_shown(driver: WebDriver) -> str:
    """The phase the page shows now."""
    return str(
        driver.execute_script(
            "const e = document.getElementById('job-phase');"
            "return e ? e.textContent.trim() : '';"
        )
    )


def wait_phase(driver: WebDriver, *phases: str, timeout: float = 90.0) -> str:
    """Wait until the page shows one of ``phases``; return it. Fails at once
    with the error message when it shows ERROR unasked for."""

    def probe() -> str | None:
        shown = phase_shown(driver)
        if shown == "ERROR" and "ERROR" not in phases:
            message = driver.find_elements(By.ID, "error-message")
            raise AssertionError(
                "the job ended in ERROR: " + (message[0].text if message else "?")
            )
        return shown if shown in phases else None

    return wait_until(
        probe,
        timeout=timeout,
        what=f"the page to show {' or '.join(phases)} (it shows {phase_shown(driver)})",
    )


def mark_page(driver: WebDriver) -> None:
    """Leave a marker in the page's window: a reload would lose it."""
    driver.execute_script("window.__notReloaded = 'yes';")


def page_marked(driver: WebDriver) -> bool:
    return driver.execute_script("return window.__notReloaded === 'yes';") is True


def submit_query(driver: WebDriver, root: str, query: str, button: str) -> None:
    """Open the query page, type ``query`` and press ``button`` (an id)."""
    driver.get(root + "/")
    editor = driver.find_element(By.ID, "query")
    editor.clear()
    editor.send_keys(query)
    driver.find_element(By.ID, button).click()


def horizontal_overflow(driver: WebDriver) -> int:
    """How many CSS pixels the page is wider than its viewport (0: none)."""
    return int(
        driver.execute_script(
            "const e = document.documentElement;"
            "return Math.max(0, e.scrollWidth - e.clientWidth);"
        )
    )


def focus_path(driver: WebDriver, presses: int) -> list[str]:
    """Press Tab ``presses`` times from the top of the page: the focused
    elements (``tag#id`` or ``tag.class``, text for links)."""
    # Start where a freshly loaded page starts: before its first element.
    driver.execute_script(
        "const start = document.createElement('span');"
        "start.tabIndex = -1; document.body.prepend(start); start.focus();"
    )
    path = []
    for _ in range(presses):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        path.append(
            driver.execute_script(
                "const e = document.activeElement;"
                "return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
                " + (e.tagName === 'A' ? ':' + e.textContent.trim() : '');"
            )
        )
    return path


def downloaded(folder: Path, suffix: str, timeout: float = 30.0) -> Path:
    """The file with ``suffix`` that appears complete in ``folder``."""

    def done() -> Path | None:
        found = [
            p
            for p in folder.iterdir()
            if p.name.endswith(suffix) and not p.name.endswith(".crdownload")
        ]
        return found[0] if found else None

    path = wait_until(done, timeout=timeout, what=f"a *{suffix} download")
    time.sleep(0.2)
    return path


def csp_violations(driver: WebDriver) -> list[str]:
    """Messages of the browser console about the Content-Security-Policy."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]

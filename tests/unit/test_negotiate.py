"""Content negotiation: which Accept headers get an HTML page (browsers) and
which keep the standard XML (pyvo, TOPCAT, STILTS, plain XML clients)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from aiouws.http.negotiate import accept_qualities, prefers_html

CHROMIUM = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: Java's HttpURLConnection default (TOPCAT, STILTS).
JAVA = "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (CHROMIUM, True),
        (FIREFOX, True),
        ("text/html", True),
        ("text/html;q=0.9, application/xhtml+xml;q=0.9, text/xml;q=0.8", True),
        ("text/html;q=0.9, text/xml;q=0.8", False),  # no browser
        (None, False),  # STILTS, curl without -H
        ("", False),
        ("*/*", False),  # pyvo
        ("text/xml", False),
        ("application/xml", False),
        ("text/html, text/xml", False),  # a tie: the standard's document
        ("text/html;q=0.5, text/xml", False),
        ("text/html;q=0", False),
        ("text/html;q=bogus", False),
        ("text/*", False),
        ("application/x-votable+xml, */*;q=0.1", False),
        (JAVA, False),  # TOPCAT, STILTS (taplint)
        ("text/html, image/gif", False),  # not a browser's
    ],
)
def test_who_gets_html(accept: str | None, html: bool) -> None:
    headers = {} if accept is None else {"Accept": accept}
    request = make_mocked_request("GET", "/tap/tables", headers=headers)
    assert prefers_html(request) is html


def test_qualities_keep_the_highest_and_drop_parameters() -> None:
    found = accept_qualities("text/html;level=1;q=0.4, TEXT/HTML;q=0.7, junk, a/b;q=2")
    assert found == {"text/html": 0.7, "a/b": 0.0}


def test_a_navigation_without_xhtml_in_accept_gets_html() -> None:
    headers = {"Accept": "text/html, image/gif", "Sec-Fetch-Dest": "document"}
    request = make_mocked_request("GET", "/tap/tables", headers=headers)
    assert prefers_html(request)

"""Content negotiation: whether a request prefers an HTML page to the standard XML.

UWS, VOSI and DALI define XML documents; browsers ask for ``text/html`` first.
A request gets HTML only when

- its ``Accept`` names ``text/html`` (or XHTML) *explicitly* with a q-value
  above that of every XML type it names (a tie goes to XML, the standard's
  answer), and
- it comes from a browser: its ``Accept`` names ``application/xhtml+xml`` (every
  current browser's does), or it is a navigation (``Sec-Fetch-Dest: document``),
  or it names nothing but HTML (``curl -H 'Accept: text/html'``).

So pyvo (``*/*``), ``text/xml``, a missing header and Java's default
(``text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2``, which TOPCAT and
STILTS send) keep the XML, byte for byte.
"""

from __future__ import annotations

from aiohttp import hdrs, web

__all__ = ["HTML_TYPES", "XML_TYPES", "accept_qualities", "prefers_html"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
XML_TYPES = frozenset(
    {"text/xml", "application/xml", "application/x-votable+xml", "text/plain"}
)
#: Sec-Fetch-Dest of a browser's page loads (links, forms, frames).
_NAVIGATIONS = frozenset({"document", "iframe", "frame"})
#: Longest Accept header read (a browser's is about 200 bytes).
_MAX_ACCEPT = 2048


def accept_qualities(header: str) -> dict[str, float]:
    """Media type (lower case, parameters other than q dropped) -> its q-value.

    A malformed q counts as 0 (not acceptable); a type named twice keeps its
    highest q.
    """
    qualities: dict[str, float] = {}
    for item in header[:_MAX_ACCEPT].split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        if not media or "/" not in media:
            continue
        q = 1.0
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        qualities[media] = max(q, qualities.get(media, 0.0))
    return qualities


def prefers_html(request: web.Request) -> bool:
    """Whether ``request`` asks for an HTML page rather than the XML document."""
    header = request.headers.get(hdrs.ACCEPT)
    if not header:
        return False
    qualities = accept_qualities(header)
    html = max((qualities.get(t, 0.0) for t in HTML_TYPES), default=0.0)
    if html <= 0.0:
        return False
    xml = max((qualities.get(t, 0.0) for t in XML_TYPES), default=0.0)
    if html <= xml:
        return False
    browser = (
        "application/xhtml+xml" in qualities
        or request.headers.get("Sec-Fetch-Dest", "").lower() in _NAVIGATIONS
        or all(t in HTML_TYPES for t in qualities)
    )
    return browser

"""The DALI 1.1 examples page of the TAP service: XHTML with RDFa."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from sqlglot import exp

from taprunner.adql.functions import is_geometry
from taprunner.adql.parse import parse_statement
from taprunner.web.xmldoc import NS_XHTML, sub

__all__ = ["DEFAULT_EXAMPLES", "examples_document", "without_geometry"]

DEFAULT_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "Cone search",
        "Stars within half a degree of (ra, dec) = (180, 0), using the"
        " positional index of demo.stars.",
        "SELECT id, ra, dec, mag FROM demo.stars\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 180.0, 0.0, 0.5))",
    ),
    (
        "Nearest stars",
        "The five stars nearest to a position, with their angular distance in degrees.",
        "SELECT TOP 5 id, name, DISTANCE(POINT('ICRS', ra, dec),"
        " POINT('ICRS', 10.68, 41.27)) AS dist\n"
        "FROM demo.stars\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec),"
        " CIRCLE('ICRS', 10.68, 41.27, 1.0))\n"
        "ORDER BY dist",
    ),
    (
        "Brightest stars",
        "The ten brightest stars of the demo catalogue.",
        "SELECT TOP 10 id, name, ra, dec, mag FROM demo.stars ORDER BY mag",
    ),
    (
        "Magnitude histogram",
        "Number of stars per one-magnitude bin.",
        "SELECT FLOOR(mag) AS bin, COUNT(*) AS n FROM demo.stars\n"
        "GROUP BY bin ORDER BY bin",
    ),
    (
        "Published tables",
        "Every table this service publishes, from TAP_SCHEMA.",
        "SELECT table_name, table_type, description FROM TAP_SCHEMA.tables\n"
        "ORDER BY table_name",
    ),
    (
        "Columns of a table",
        "The columns of demo.stars with their types, units and UCDs.",
        "SELECT column_name, datatype, arraysize, unit, ucd, description\n"
        "FROM TAP_SCHEMA.columns WHERE table_name = 'demo.stars'\n"
        "ORDER BY column_index",
    ),
)
"""(name, description, ADQL query) of the default DALI examples."""


def without_geometry(
    examples: Sequence[tuple[str, str, str]],
) -> tuple[tuple[str, str, str], ...]:
    """The ``examples`` whose query calls no geometry function (for a database
    without pg_sphere, where those are refused)."""
    return tuple(e for e in examples if not _calls_geometry(e[2]))


def _calls_geometry(adql: str) -> bool:
    return any(
        is_geometry(str(call.this))
        for call in parse_statement(adql).find_all(exp.Anonymous)
    )


def examples_document(
    base_url: str,
    examples: Sequence[tuple[str, str, str]] = DEFAULT_EXAMPLES,
) -> bytes:
    """Render a DALI 1.1 examples page: XHTML with RDFa, one div per example.

    Each example is ``(name, description, query)``. The div carries
    ``typeof="example"``, an id derived from the name and ``resource="#id"``;
    the name and the ADQL query are the RDFa properties ``name`` and ``query``.
    """
    html = etree.Element(
        f"{{{NS_XHTML}}}html",
        nsmap={None: NS_XHTML},  # type: ignore[dict-item,unused-ignore]  # lxml-stubs
    )
    head = sub(html, f"{{{NS_XHTML}}}head")
    sub(head, f"{{{NS_XHTML}}}title", "TAP examples")
    body = sub(html, f"{{{NS_XHTML}}}body")
    body.set("vocab", "http://www.ivoa.net/rdf/examples#")
    sub(body, f"{{{NS_XHTML}}}h1", "Example queries")
    intro = sub(body, f"{{{NS_XHTML}}}p", "ADQL queries for the TAP service at ")
    link = sub(intro, f"{{{NS_XHTML}}}a", base_url)
    link.set("href", base_url)
    link.tail = "."
    seen: set[str] = set()
    for name, description, query in examples:
        ident = _unique_id(name, seen)
        div = sub(body, f"{{{NS_XHTML}}}div")
        div.set("typeof", "example")
        div.set("id", ident)
        div.set("resource", f"#{ident}")
        sub(div, f"{{{NS_XHTML}}}h2", name).set("property", "name")
        sub(div, f"{{{NS_XHTML}}}p", description)
        sub(div, f"{{{NS_XHTML}}}pre", query).set("property", "query")
    return bytes(
        etree.tostring(
            html,
            xml_declaration=True,
            encoding="UTF-8",
            pretty_print=True,
            doctype="<!DOCTYPE html>",
        )
    )


def _unique_id(name: str, seen: set[str]) -> str:
    base = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "ex"
    if not base[0].isalpha():
        base = "ex-" + base
    ident, counter = base, 1
    while ident in seen:
        counter += 1
        ident = f"{base}-{counter}"
    seen.add(ident)
    return ident

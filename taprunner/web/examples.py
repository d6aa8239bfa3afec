"""The DALI 1.1 examples page of the TAP service: XHTML with RDFa.

The examples are the operator's (``tap_examples``: a DALI examples document
served as it is, or a TOML list of ``[[example]]`` tables) or generated from
the published tables: the demo catalogue's own examples only when
``demo.stars`` is published, a look at each other table, and TAP_SCHEMA.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from sqlglot import exp

from aiouws.config import ConfigError
from taprunner.adql.functions import is_geometry
from taprunner.adql.parse import parse_statement
from taprunner.schema.catalog import TableInfo
from taprunner.web.xmldoc import NS_XHTML, sub

__all__ = [
    "DEFAULT_EXAMPLES",
    "Example",
    "OperatorExamples",
    "examples_document",
    "generated_examples",
    "load_examples",
    "without_geometry",
]

Example = tuple[str, str, str]
"""(name, description, ADQL query) of one example."""
#: The operator's examples: a whole document (bytes) or a list to render.
OperatorExamples = bytes | tuple[Example, ...]
#: Tables of the service's own that get a generated example at most.
MAX_TABLE_EXAMPLES = 10
DEMO_TABLE = "demo.stars"

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
"""The demo catalogue's examples (offered when ``demo.stars`` is published)."""


def generated_examples(
    tables: Sequence[TableInfo], *, geometry: bool
) -> tuple[Example, ...]:
    """Examples for the published ``tables``: the demo's when ``demo.stars`` is
    published (its geometry ones only with pg_sphere), ten rows of each other
    table, and TAP_SCHEMA's tables and columns."""
    names = [t.name for t in tables if not t.name.lower().startswith("tap_schema.")]
    examples: list[Example] = []
    if DEMO_TABLE in names:
        demo = DEFAULT_EXAMPLES if geometry else without_geometry(DEFAULT_EXAMPLES)
        examples.extend(e for e in demo if "TAP_SCHEMA" not in e[2])
    for table in [n for n in names if n != DEMO_TABLE][:MAX_TABLE_EXAMPLES]:
        examples.append(
            (
                f"Rows of {table}",
                f"Ten rows of {table}, every column.",
                f"SELECT TOP 10 * FROM {table}",
            )
        )
    described = names[0] if names else "tap_schema.tables"
    examples.append(DEFAULT_EXAMPLES[4])
    examples.append(
        (
            "Columns of a table",
            f"The columns of {described} with their types, units and UCDs.",
            "SELECT column_name, datatype, arraysize, unit, ucd, description\n"
            f"FROM TAP_SCHEMA.columns WHERE table_name = '{described}'\n"
            "ORDER BY column_index",
        )
    )
    return tuple(examples)


def load_examples(path: str) -> OperatorExamples | None:
    """The operator's examples file (``tap_examples``), None if not set.

    Raises
    ------
    ConfigError
        The file cannot be read, is not well-formed XHTML, or its TOML has no
        ``[[example]]`` list of tables with string ``name`` and ``query``.
    """
    if not path:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"tap_examples: cannot read {path}: {exc}") from exc
    if not path.lower().endswith(".toml"):
        try:
            etree.fromstring(data)
        except etree.XMLSyntaxError as exc:
            raise ConfigError(f"tap_examples: {path} is not XHTML: {exc}") from exc
        return data
    try:
        items = tomllib.loads(data.decode("utf-8")).get("example")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"tap_examples: {path}: {exc}") from exc
    if not isinstance(items, list) or not items:
        raise ConfigError(f"tap_examples: {path} has no [[example]] tables")
    examples = []
    for n, item in enumerate(items, start=1):
        name, query = item.get("name"), item.get("query")
        description = item.get("description", "")
        if not all(isinstance(v, str) for v in (name, query, description)):
            raise ConfigError(
                f"tap_examples: {path}: example {n} needs name and query strings"
            )
        examples.append((name, description, query))
    return tuple(examples)


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

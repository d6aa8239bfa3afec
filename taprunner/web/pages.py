"""TAP's pages for people: the query page at the service root, and the HTML
faces of ``/tap/tables``, capabilities, availability and examples.

Served only to requests that prefer ``text/html`` (:mod:`aiouws.http.negotiate`),
but the query page, which is HTML for everyone. Templates:
``taprunner/web/templates/`` on top of aiouws's (``base.html``); structure the
scripts (``/static/tap.js``) rely on:

``query.html``
    ``form#query-form`` (POST; ``textarea#query`` QUERY, ``input#maxrec``,
    ``select#format`` whose options carry ``data-extension``,
    ``button#submit-async`` (PHASE=RUN to /tap/async, then 303 to the job
    page), ``button#submit-sync``); ``ul#example-list`` of ``a.example-link``
    (``href`` opens this page with the query filled, ``data-query``);
    ``aside#schema-browser`` of ``details.table-entry[data-table]`` with
    ``tr.column`` (``data-column``, ``data-table``, ``data-ucd``, ``data-unit``).
``tables.html``/``table.html``
    ``a.table-link``; ``table#table-columns`` of ``tr.column``; ``a#query-table``.
``examples.html``
    ``div.example`` (RDFa as the DALI document) with ``a.example-link``.

The tables shown come from :func:`taprunner.web.state.visible_catalog`, the
lookup /tap/tables uses (whatever restricts what an owner may see applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from aiouws.http.pages import Pages, page_root, render_page
from aiouws.http.urls import public_origin
from aiouws.timefmt import format_iso
from taprunner.formats.registry import OUTPUT_FORMATS, OutputFormat
from taprunner.schema.catalog import TableInfo
from taprunner.web.examples import Example, generated_examples
from taprunner.web.state import TAP, TapState, visible_catalog

__all__ = [
    "TAP_PAGES",
    "availability_page",
    "capabilities_page",
    "examples_page",
    "format_choices",
    "routes",
    "table_page",
    "tables_page",
]

routes = web.RouteTableDef()
#: TAP's templates over aiouws's, its header links and its static files.
TAP_PAGES = Pages(
    packages=(("taprunner.web", "templates"), ("aiouws", "templates")),
    nav=(
        ("Query", "/"),
        ("Jobs", "/tap/async"),
        ("Tables", "/tap/tables"),
        ("Examples", "/tap/examples"),
        ("Capabilities", "/tap/capabilities"),
        ("Availability", "/tap/availability"),
    ),
    stylesheets=("uws.css", "tap.css"),
    scripts=("tap.js",),
    assets={
        "uws.css": ("aiouws", "static/uws.css"),
        "uws.js": ("aiouws", "static/uws.js"),
        "tap.css": ("taprunner.web", "static/tap.css"),
        "tap.js": ("taprunner.web", "static/tap.js"),
    },
)
#: Tables whose columns the query page lists inline (more: a link each).
INLINE_TABLES = 100
_XHTML = "{http://www.w3.org/1999/xhtml}"


def _tap(request: web.Request) -> str:
    return page_root(request) + "/tap"


def _page(
    request: web.Request, template: str, page: str, **context: Any
) -> web.Response:
    return render_page(request, template, page=page, tap=_tap(request), **context)


def format_choices() -> list[dict[str, str]]:
    """The output formats as a form offers them: RESPONSEFORMAT value, label,
    file extension (from the format registry)."""
    return [_choice(f) for f in OUTPUT_FORMATS]


def _choice(f: OutputFormat) -> dict[str, str]:
    return {
        "name": f.name,
        "value": f.accepts[0],
        "label": f"{f.name.upper() if len(f.name) <= 4 else f.name.capitalize()}"
        f" ({f.media_type.split(';')[0]})",
        "extension": f.extension,
        "mime": f.capability.mime,
    }


def query_href(request: web.Request, query: str) -> str:
    """The query page with ``query`` filled in."""
    return page_root(request) + "/?" + urlencode({"query": query}) + "#query-form"


async def examples_of(request: web.Request, state: TapState) -> tuple[Example, ...]:
    """The examples /tap/examples serves, as (name, description, query)."""
    given = state.examples
    if isinstance(given, bytes):
        return _parsed_examples(given)
    if given is not None:
        return given
    tables = (await visible_catalog(request)).tables
    return generated_examples(tables, geometry=state.geometry)


def _parsed_examples(document: bytes) -> tuple[Example, ...]:
    """The examples of an operator's DALI examples document (RDFa)."""
    root = etree.fromstring(document)
    found: list[Example] = []
    for div in root.iter():
        if div.get("typeof") != "example":
            continue
        name = query = ""
        for child in div.iter():
            prop = child.get("property")
            if prop == "name":
                name = "".join(child.itertext()).strip()
            elif prop == "query":
                query = "".join(child.itertext()).strip()
        if query:
            found.append((name or query[:40], "", query))
    return tuple(found)


@routes.get("/")
@routes.get("/tap")
async def query_page(request: web.Request) -> web.Response:
    """The query page: editor, examples, the tables beside it."""
    state = request.config_dict[TAP]
    tables = [
        t
        for t in (await visible_catalog(request)).tables
        if not t.name.lower().startswith("tap_schema.")
    ]
    examples = await examples_of(request, state)
    given = request.query.get("query")
    default = examples[0][2] if examples else "SELECT TOP 10 * FROM tap_schema.tables"
    example = "SELECT TOP 10 id, ra, dec, mag FROM demo.stars WHERE " + (
        "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 10, 1)) = 1"
        if state.geometry
        else "mag < 8"
    )
    formats = format_choices()
    chosen = request.query.get("format", formats[0]["value"])
    return _page(
        request,
        "query.html",
        "query",
        title=state.tap.title,
        meta=state.tap,
        query=given if given is not None else default,
        maxrec=request.query.get("maxrec", str(state.tap.maxrec_default)),
        maxrec_hard=state.tap.maxrec_hard,
        formats=formats,
        chosen_format=chosen,
        sync_timeout=f"{state.tap.sync_timeout:g}",
        examples=[
            {
                "name": name,
                "description": description,
                "query": query,
                "href": query_href(request, query),
            }
            for name, description, query in examples
        ],
        tables=[_table_entry(t, n < INLINE_TABLES) for n, t in enumerate(tables)],
        example=example,
        public_tap=public_origin(request) + "/tap",
        curation=_curation(state),
    )


def _table_entry(table: TableInfo, inline: bool) -> dict[str, object]:
    return {
        "name": table.name,
        "description": table.description,
        "columns": table.columns if inline else None,
        "count": len(table.columns),
    }


def _curation(state: TapState) -> list[tuple[str, str, str | None]]:
    meta = state.tap
    items: list[tuple[str, str, str | None]] = [
        (label, value, None)
        for label, value in (
            ("Publisher", meta.publisher),
            ("Contact", meta.contact_name),
            ("IVOA identifier", meta.ivoid),
        )
        if value
    ]
    if meta.contact_email:
        items.append(("E-mail", meta.contact_email, f"mailto:{meta.contact_email}"))
    return items


def tables_page(request: web.Request, tables: Sequence[TableInfo]) -> web.Response:
    """/tap/tables as a page: the tables by schema, each linking to its columns."""
    schemas: dict[str, list[TableInfo]] = {}
    for table in tables:
        schemas.setdefault(table.schema, []).append(table)
    return _page(
        request, "tables.html", "tables", title="Tables", schemas=list(schemas.items())
    )


def table_page(request: web.Request, table: TableInfo) -> web.Response:
    """/tap/tables/{name} as a page: its columns (units, UCDs, descriptions)."""
    return _page(
        request,
        "table.html",
        "table",
        title=f"Table {table.name}",
        table=table,
        query_href=query_href(request, f"SELECT TOP 10 * FROM {table.name}"),
    )


async def examples_page(request: web.Request) -> web.Response:
    """/tap/examples as a page: each example opens the query page filled in."""
    state = request.config_dict[TAP]
    seen: set[str] = set()
    examples = []
    for name, description, query in await examples_of(request, state):
        ident = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
        ident = ident if ident[:1].isalpha() else "ex-" + ident
        while ident in seen:
            ident += "-2"
        seen.add(ident)
        examples.append(
            {
                "id": ident,
                "name": name,
                "description": description,
                "query": query,
                "href": query_href(request, query),
            }
        )
    return _page(
        request, "examples.html", "examples", title="Examples", examples=examples
    )


def capabilities_page(
    request: web.Request,
    *,
    limits: Sequence[tuple[str, str]],
    features: Sequence[tuple[str, Sequence[str]]],
) -> web.Response:
    """The capabilities as a page: interfaces, limits, formats, ADQL features."""
    tap = _tap(request)
    interfaces = [
        ("TAP sync", f"{tap}/sync"),
        ("TAP async (UWS)", f"{tap}/async"),
        ("Tables (VOSI)", f"{tap}/tables"),
        ("Availability (VOSI)", f"{tap}/availability"),
        ("Examples (DALI)", f"{tap}/examples"),
    ]
    return _page(
        request,
        "capabilities.html",
        "capabilities",
        title="Capabilities",
        interfaces=interfaces,
        limits=limits,
        formats=format_choices(),
        features=features,
    )


def availability_page(
    request: web.Request, up: bool, note: str, since: datetime | None
) -> web.Response:
    """The availability as a page."""
    return _page(
        request,
        "availability.html",
        "availability",
        title="Availability",
        up=up,
        note=note,
        since=format_iso(since) if since is not None else "",
    )

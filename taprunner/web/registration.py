"""What registries and clients read about the service: the DALI examples
(``/tap/examples``) and the VOResource record (``/tap/resource``)."""

from __future__ import annotations

from aiohttp import hdrs, web

from aiouws.http.access import ACCESS_OWNER
from aiouws.http.keys import SETTINGS
from aiouws.http.negotiate import prefers_html
from taprunner.web import pages, vosi
from taprunner.web.endpoints import capabilities_body, tap_url
from taprunner.web.examples import examples_document, generated_examples
from taprunner.web.resource import ResourceRecord, resource_document
from taprunner.web.state import TAP, visible_catalog

__all__ = ["RESOURCE_PATH", "routes"]

routes = web.RouteTableDef()
#: Where the VOResource record is served (a stable URL for registries).
RESOURCE_PATH = "/tap/resource"
_XHTML = "application/xhtml+xml"


@routes.get("/tap/examples")
async def examples(request: web.Request) -> web.Response:
    """The operator's examples, else examples of the published tables (for a
    browser: a page whose examples open the query page)."""
    if prefers_html(request):
        return await pages.examples_page(request)
    state = request.config_dict[TAP]
    given = state.examples
    if isinstance(given, bytes):
        return _xhtml(given)
    if given is None:
        tables = (await visible_catalog(request)).tables
        given = generated_examples(tables, geometry=state.geometry)
    return _xhtml(examples_document(tap_url(request), given))


def _xhtml(body: bytes) -> web.Response:
    """The DALI examples document (a browser gets a page at the same URL:
    caches must tell them apart)."""
    return web.Response(
        body=body,
        content_type=_XHTML,
        charset="utf-8",
        headers={hdrs.VARY: hdrs.ACCEPT},
    )


@routes.get(RESOURCE_PATH)
async def resource(request: web.Request) -> web.Response:
    """The service's VOResource record (VODataService CatalogService).

    Public, but with ``require_auth`` an anonymous caller gets it without the
    tableset: /tap/tables does not show the tables to them either."""
    state = request.config_dict[TAP]
    settings = request.config_dict[SETTINGS]
    private = settings.require_auth and ACCESS_OWNER not in request
    catalog = await visible_catalog(request)
    created = await state.created()
    record = ResourceRecord(
        tap_url=tap_url(request),
        created=created,
        # The record's content is the settings read at start (and TAP_SCHEMA).
        updated=max(created, state.up_since),
    )
    body = resource_document(
        state.tap,
        record,
        capabilities_body(request),
        None if private else vosi.tables_document(catalog.tables),
    )
    return web.Response(body=body, content_type="text/xml", charset="utf-8")

"""TAP HTTP endpoints: sync queries (streamed), VOSI resources (as HTML pages
for browsers, :mod:`taprunner.web.pages`).

Handlers raise; the aiouws error middleware answers for TAP errors with their
status and DALI error document (:mod:`taprunner.errors`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import hdrs, web

from aiouws.errors import PayloadTooLarge, UsageError
from aiouws.http.identity import security_methods
from aiouws.http.keys import SETTINGS, request_owner
from aiouws.http.negotiate import prefers_html
from aiouws.http.params import Params, read_params
from aiouws.http.urls import public_origin
from taprunner.adql.limits import check_length
from taprunner.adql.model import AdqlError
from taprunner.errors import (
    TapError,
    TapQueryError,
    TapRequestTooLarge,
    TapUsageError,
)
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.execute import run_query
from taprunner.query.outcome import QueryOutcome
from taprunner.query.querylog import QueryTag
from taprunner.query.uploadlimits import UploadLimits
from taprunner.query.uploads import load_uploads
from taprunner.request import TapRequest, parse_request
from taprunner.web import pages, vosi
from taprunner.web.capabilities import (
    DEFAULT_LANGUAGE_FEATURES,
    DEFAULT_UDFS,
    NO_GEOMETRY_LANGUAGE_FEATURES,
    NO_GEOMETRY_UDFS,
    capabilities_document,
)
from taprunner.web.metrics import TAP_METRICS
from taprunner.web.sessionroles import request_role
from taprunner.web.state import TAP, TapState, visible_catalog
from taprunner.web.streamzip import StreamCompressor

__all__ = ["capabilities_body", "routes", "tap_url"]

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
_XML = "text/xml"
#: Seconds a sync query may take beyond TapSettings.sync_timeout to reach the client.
SYNC_MARGIN = 5.0
#: Seconds the availability probe waits for the database.
PROBE_TIMEOUT = 5.0
#: Bytes of a sync response held before they go out: a small result leaves in
#: one write, with the response's end, where its header, rows, footer and end
#: were a write (a system call) each.
HOLD_BYTES = 64 * 1024


def tap_url(request: web.Request) -> str:
    """The TAP base URL as the client reaches it (behind a proxy too)."""
    return public_origin(request) + "/tap"


class _ClientStalled(Exception):
    """The client did not take a chunk of the response within the write timeout."""


class _LazyStream:
    """The sync response, prepared only when the first bytes are ready.

    Until then a failure is raised to the error middleware, which answers with
    the DALI error document. Once bytes are out no second response can follow:
    a VOTable whose query failed ends with its error status (the query code
    wrote it after the TABLE, DALI's trailing QUERY_STATUS) and the connection
    closes; any other failure, and any failure of a format without a trailer
    (CSV, TSV), cuts the connection off, so that the client sees an incomplete
    body rather than a complete-looking one.
    """

    def __init__(
        self,
        request: web.Request,
        media_type: str,
        *,
        compress: bool = False,
        write_timeout: float = 10.0,
        disposition: str | None = None,
    ) -> None:
        self._request = request
        self._disposition = disposition
        self._media_type = media_type
        self._compress = compress
        self._write_timeout = write_timeout
        self.response: web.StreamResponse | None = None
        self._zip: StreamCompressor | None = None
        self._held: list[bytes] = []  # up to HOLD_BYTES, not sent yet
        self._held_bytes = 0

    async def _write_eof(self) -> None:
        """End the response (and its compressed stream) with the bytes held."""
        assert self.response is not None
        data = b"".join(self._held)
        self._held, self._held_bytes = [], 0
        if self._zip is not None:
            data = (await self._zip.compress(data) if data else b"") + self._zip.flush()
            self._zip = None
        try:
            async with asyncio.timeout(self._write_timeout):
                await self.response.write_eof(data)
        except TimeoutError:
            raise _ClientStalled() from None

    async def write(self, data: bytes) -> None:
        """Send ``data`` (held until HOLD_BYTES are, or the end); raise
        _ClientStalled when the client does not take it within the write
        timeout (its pooled connection is then given back)."""
        if self.response is None:
            self.response = web.StreamResponse(
                headers={"Content-Type": self._media_type}
            )
            if self._disposition:
                self.response.headers[hdrs.CONTENT_DISPOSITION] = self._disposition
            if self._compress:
                # gzip or deflate if Accept-Encoding asks (the format's choice),
                # at zlib's fastest level (streamzip.py).
                accept = self._request.headers.get(hdrs.ACCEPT_ENCODING, "")
                self._zip = StreamCompressor.accepted(accept)
                if self._zip is not None:
                    self.response.headers[hdrs.CONTENT_ENCODING] = self._zip.coding
                self.response.headers.add(hdrs.VARY, hdrs.ACCEPT_ENCODING)
            await self.response.prepare(self._request)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes < HOLD_BYTES:
            return
        data = b"".join(self._held)
        self._held, self._held_bytes = [], 0
        if self._zip is not None:
            data = await self._zip.compress(data)
            if not data:  # zlib holds it back for now
                return
        try:
            async with asyncio.timeout(self._write_timeout):
                await self.response.write(data)
        except TimeoutError:
            raise _ClientStalled() from None

    @asynccontextmanager
    async def delivering(self, limit: float) -> AsyncIterator[None]:
        """Bound the query and its delivery to ``limit`` + SYNC_MARGIN seconds.

        A client that stops reading must not keep the pooled connection (and its
        transaction) beyond the query's own time limit.

        Raises
        ------
        TapError
            The query failed before the response started.
        TapQueryError
            The time ran out before the response started.
        """
        try:
            async with asyncio.timeout(limit + SYNC_MARGIN):
                yield
                await self._write_eof()
        except _ClientStalled:
            log.warning(
                "sync response cut off: the client took nothing for %g s",
                self._write_timeout,
            )
            self._cut_off()
        except TimeoutError:
            if self.response is None:
                raise TapQueryError(
                    f"query did not finish within {limit:g} s"
                ) from None
            log.warning(
                "sync response not delivered within %g s: client dropped", limit
            )
            self._cut_off()
        except Exception as exc:
            if self.response is None:
                raise
            await self._failed_after_start(exc)

    async def _failed_after_start(self, exc: Exception) -> None:
        """End a response whose query failed after its first bytes went out."""
        assert self.response is not None
        trailer = isinstance(exc, TapError) and "votable" in self._media_type
        if trailer:
            log.warning(
                "sync query failed after its response started; the VOTable ends"
                " with its error status and the connection closes: %s",
                exc,
            )
            self.response.force_close()
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self._write_eof()
                return
            except (TimeoutError, ConnectionError, _ClientStalled):
                pass
        else:
            log.error(
                "sync query failed after its response started; connection cut off: %s",
                exc,
                exc_info=not isinstance(exc, TapError),
            )
        self._cut_off()

    def _cut_off(self) -> None:
        """Abort the connection: the client sees an incomplete response."""
        if self.response is not None:
            self.response.force_close()
        if self._request.transport is not None:
            self._request.transport.abort()


async def _run_sync(
    state: TapState,
    tap_request: TapRequest,
    params: Params,
    stream: _LazyStream,
    tag: QueryTag,
    role: str,
) -> QueryOutcome:
    """Run the query on a pooled connection as ``role`` (the request's session
    role), uploads loaded, into ``stream``."""
    settings = state.settings
    catalog = await state.catalog(role)
    parts = {upload.name: upload.path for upload in params.uploads}
    async with (
        state.connection(writable=bool(tap_request.uploads)) as conn,
        load_uploads(
            conn,
            tap_request.uploads,
            parts,
            catalog,
            max_bytes=settings.max_upload_bytes,
            role=role,
            limits=UploadLimits.of(state.tap),
        ) as full_catalog,
    ):
        return await run_query(
            conn,
            tap_request,
            full_catalog,
            stream.write,
            timeout=state.tap.sync_timeout,
            role=role,
            tag=tag,
            limits=state.tap.query_limits(),
            result_limits=ResultLimits.for_sync(state.tap),
            database=state.query_database,
        )


def _disposition(request: web.Request, tap_request: TapRequest) -> str | None:
    """A browser's sync result saved as ``tap-result.EXT``; None for API clients."""
    if not prefers_html(request):
        return None
    return f'attachment; filename="tap-result.{tap_request.format.extension}"'


@routes.route("*", "/tap/sync")
async def sync_query(request: web.Request) -> web.StreamResponse:
    """Run a query and stream the result as it comes out of the database."""
    if request.method not in ("GET", "POST"):
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
    owner = await request_owner(request)  # as the UWS endpoints: 401 if refused
    state = request.config_dict[TAP]
    settings = state.settings
    try:  # refused bodies get a DALI error document too
        params = await read_params(
            request,
            max_upload_bytes=settings.max_upload_bytes,
            spool_dir=settings.resolved_jobs_dir / ".spool",
            max_text_bytes=settings.max_request_bytes,
        )
    except PayloadTooLarge as exc:
        raise TapRequestTooLarge(exc.message) from exc
    except UsageError as exc:
        raise TapUsageError(exc.message) from exc
    try:
        tap_request = parse_request(
            params.multi(),
            maxrec_default=state.tap.maxrec_default,
            maxrec_hard=state.tap.maxrec_hard,
        )
        try:  # before anything else is done for it (the uploads loaded)
            check_length(tap_request.query, state.tap.query_limits())
        except AdqlError as exc:
            raise TapUsageError(str(exc)) from exc
        stream = _LazyStream(
            request,
            tap_request.media_type,
            compress=tap_request.format.compress,
            write_timeout=settings.write_timeout,
            # A browser (the query page's form) saves the result under a name
            # with its format's extension; API clients get the response as ever.
            disposition=_disposition(request, tap_request),
        )
        async with stream.delivering(state.tap.sync_timeout):
            metrics = request.config_dict.get(TAP_METRICS)
            observe = None if metrics is None else metrics.observe
            tag = QueryTag(owner, "sync", observe)
            role = request_role(request)
            outcome = await _run_sync(state, tap_request, params, stream, tag, role)
            if outcome.cut is not None and not tap_request.format.trailer:
                # CSV/TSV have no trailer to say so: end the response without
                # its last chunk, so that it cannot pass for a complete result.
                if request.transport is not None:
                    request.transport.abort()
                raise TapQueryError(outcome.cut)
        assert stream.response is not None
        return stream.response
    finally:
        params.discard_uploads()


def _xml(body: bytes) -> web.Response:
    """A negotiated VOSI document (browsers get a page at the same URL)."""
    response = web.Response(body=body, content_type=_XML, charset="utf-8")
    response.headers[hdrs.VARY] = hdrs.ACCEPT
    return response


@routes.get("/tap/capabilities")
async def capabilities(request: web.Request) -> web.Response:
    if prefers_html(request):
        return _capabilities_page(request)
    return _xml(capabilities_body(request))


def _capabilities_page(request: web.Request) -> web.Response:
    s = request.config_dict[SETTINGS]
    state = request.config_dict[TAP]
    tap = state.tap
    features = (
        DEFAULT_LANGUAGE_FEATURES if state.geometry else NO_GEOMETRY_LANGUAGE_FEATURES
    )
    udfs = DEFAULT_UDFS if state.geometry else NO_GEOMETRY_UDFS
    listed = [
        (kind.rpartition("#")[2], [f.form for f in members])
        for kind, members in features.items()
    ]
    listed.append(("user-defined functions", [f.form for f in udfs]))
    limits = [
        ("MAXREC default / hard", f"{tap.maxrec_default} / {tap.maxrec_hard} rows"),
        ("Upload size", f"{s.max_upload_bytes} bytes"),
        (
            "Execution duration default / hard",
            f"{s.default_execution_duration} / {s.max_execution_duration} s",
        ),
        (
            "Retention default / hard",
            f"{s.default_destruction_days:g} / {s.max_destruction_days:g} days",
        ),
        ("Sync query time", f"{tap.sync_timeout:g} s"),
    ]
    return pages.capabilities_page(request, limits=limits, features=listed)


def capabilities_body(request: web.Request) -> bytes:
    """The VOSI capabilities document (also the VOResource record's)."""
    s = request.config_dict[SETTINGS]
    state = request.config_dict[TAP]
    tap = state.tap
    return capabilities_document(
        tap_url(request),
        upload_limit_bytes=s.max_upload_bytes,
        max_rec_default=tap.maxrec_default,
        max_rec_hard=tap.maxrec_hard,
        retention_default_s=int(s.default_destruction_days * 86400),
        retention_hard_s=int(s.max_destruction_days * 86400),
        execution_default_s=s.default_execution_duration,
        execution_hard_s=s.max_execution_duration,
        language_features=DEFAULT_LANGUAGE_FEATURES
        if state.geometry
        else NO_GEOMETRY_LANGUAGE_FEATURES,
        udfs=DEFAULT_UDFS if state.geometry else NO_GEOMETRY_UDFS,
        security_methods=security_methods(s),
    )


@routes.get("/tap/availability")
async def availability(request: web.Request) -> web.Response:
    state = request.config_dict[TAP]
    up, note = await _database_state(state)
    since = state.up_since if up else None
    if prefers_html(request):
        return pages.availability_page(request, up, note, since)
    return _xml(vosi.availability_document(up, note, since))


async def _database_state(state: TapState) -> tuple[bool, str]:
    """Whether the database answers, and the note saying so.

    A pooled connection if one is free within a second; else (every pooled
    connection busy, e.g. with slow clients' queries) a connection of its own
    (:meth:`TapState.probe`): a busy pool is not an unreachable database.
    """
    try:
        try:
            async with state.pool.acquire(timeout=1) as pooled:
                await pooled.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
            return True, "service is accepting queries"
        except TimeoutError:
            if state.pool.get_idle_size() > 0:
                raise  # a free connection that did not answer: not available
        await state.probe(PROBE_TIMEOUT)  # as the query role, one at a time
        return True, "service is accepting queries (every pooled connection busy)"
    except (OSError, TimeoutError) as exc:
        return False, f"database unreachable: {exc or type(exc).__name__}"
    except Exception as exc:  # any database failure means: not available
        return False, f"database error: {exc}"


@routes.get("/tap/tables")
async def tables(request: web.Request) -> web.Response:
    detail = request.query.get("detail", "max").lower()
    if detail not in ("min", "max"):
        raise web.HTTPBadRequest(text="detail must be min or max")
    catalog = await visible_catalog(request)
    if prefers_html(request):
        return pages.tables_page(request, catalog.tables)
    body = vosi.tables_document(
        catalog.tables, detail="min" if detail == "min" else "max"
    )
    return _xml(body)


@routes.get("/tap/tables/{name}")
async def one_table(request: web.Request) -> web.Response:
    catalog = await visible_catalog(request)
    table = catalog.table(request.match_info["name"])
    if table is None:
        raise web.HTTPNotFound(text=f"no table {request.match_info['name']!r}")
    if prefers_html(request):
        return pages.table_page(request, table)
    return _xml(vosi.table_document(table))

"""Running one TAP query: translate, execute read-only, stream encoded bytes to a sink.

Shared by the async runner (sink: a result file) and the sync endpoint (sink: the
HTTP response). User SQL runs in a read-only transaction as the role
``aiouws_query`` with a statement timeout, from a server-side cursor in batches,
so memory does not grow with the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import asyncpg

from taprunner.adql.translate import (
    AdqlError,
    Catalog,
    OutputColumn,
    Translation,
    translate,
)
from taprunner.errors import TapError, TapQueryError, TapUsageError
from taprunner.formats.arrow import ColumnsChanged, columnar_fields
from taprunner.formats.pgcopy import copy_matches
from taprunner.formats.registry import DataPath, RowEncoder
from taprunner.formats.votable import FieldSpec, VOTableEncoder, field_for_pg_type
from taprunner.query.heap import keep_heap_pad
from taprunner.request import TapRequest
from taprunner.schema.catalog import ColumnInfo, Connection

__all__ = [
    "QUERY_ROLE",
    "Columnar",
    "ColumnarUnavailable",
    "QueryOutcome",
    "Sink",
    "StatementCache",
    "query_error",
    "run_query",
    "timeout_ms",
]

QUERY_ROLE = "aiouws_query"
#: Rows fetched from the cursor per round trip.
BATCH = 10_000
Sink = Callable[[bytes], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    rows: int
    overflow: bool


class ColumnarUnavailable(Exception):
    """The columnar session cannot serve this query and wrote nothing (no
    connection, or it was lost before any row came): asyncpg runs it instead."""


class Columnar(Protocol):
    """Runs a binary VOTable result outside asyncpg (:mod:`.columnar`)."""

    async def run(
        self,
        sql: str,
        encoder: VOTableEncoder,
        pg_types: Sequence[str],
        maxrec: int,
        timeout: float,
        sink: Sink,
    ) -> QueryOutcome: ...


@runtime_checkable
class DescribingCatalog(Protocol):
    """A catalogue that also knows units, UCDs and descriptions (TAP_SCHEMA)."""

    def column_info(self, table: str, column: str) -> ColumnInfo | None: ...


def _fields(
    columns: Sequence[OutputColumn],
    attributes: Sequence[object],
    catalog: DescribingCatalog | None,
) -> list[FieldSpec]:
    fields = []
    for column, attribute in zip(columns, attributes, strict=True):
        pg_type = attribute.type.name  # type: ignore[attr-defined]
        meta: dict[str, str | None] = {}
        if catalog is not None and column.table and column.column:
            info = catalog.column_info(column.table, column.column)
            if info is not None:
                meta = {
                    "unit": info.unit,
                    "ucd": info.ucd,
                    "utype": info.utype,
                    "description": info.description,
                }
                if info.xtype and pg_type not in ("float8", "_float8"):
                    meta["xtype"] = info.xtype
        field = field_for_pg_type(column.name, pg_type, **meta)
        if column.xtype is not None:
            size = {"point": "2", "circle": "3"}.get(column.xtype, "*")
            field = replace(
                field, datatype="double", arraysize=size, xtype=column.xtype
            )
        fields.append(field)
    return fields


class StatementCache:
    """The prepared statements of one connection, by SQL text (the most recent).

    ``Connection.prepare`` parses and describes anew on every call: a round trip
    plus PostgreSQL's parse and plan work for every query, which is most of a tiny
    query's cost. A long-lived connection (a warm runner's) keeps its statements
    here instead. PostgreSQL re-plans a statement itself when a table it uses
    changes; when the result's columns changed, the statement is dropped and
    prepared again (see :func:`run_query`).
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: OrderedDict[str, asyncpg.prepared_stmt.PreparedStatement] = (
            OrderedDict()
        )

    async def prepare(
        self, conn: Connection, sql: str
    ) -> asyncpg.prepared_stmt.PreparedStatement:
        statement = self._entries.get(sql)
        if statement is not None:
            self._entries.move_to_end(sql)
            return statement
        statement = await conn.prepare(sql)
        self._entries[sql] = statement
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return statement

    def discard(self, sql: str) -> None:
        self._entries.pop(sql, None)

    def __len__(self) -> int:
        return len(self._entries)


async def _prepare(
    conn: Connection, sql: str, statements: StatementCache | None
) -> asyncpg.prepared_stmt.PreparedStatement:
    """``sql`` prepared on ``conn``, through ``statements`` (its cache) if given."""
    if statements is None:
        return await conn.prepare(sql)
    return await statements.prepare(conn, sql)


def timeout_ms(seconds: float) -> int:
    """A timeout in whole milliseconds for PostgreSQL settings (at least 1)."""
    return max(1, int(seconds * 1000))


async def run_query(
    conn: Connection,
    request: TapRequest,
    catalog: Catalog,
    sink: Sink,
    *,
    timeout: float,
    role: str | None = QUERY_ROLE,
    statements: StatementCache | None = None,
    session: bool = False,
    columnar: Columnar | None = None,
) -> QueryOutcome:
    """Translate and run ``request`` on ``conn``, writing the encoded result to sink.

    With ``statements`` (the cache of ``conn``), a repeated VOTable query without
    uploads reuses its prepared statement. ``session``: ``conn`` is already a
    read-only session as the query role with ``timeout`` as its statement
    timeout, and the result is known to be small (the fast lane's); a VOTable is
    then fetched in one round trip, without a transaction and a cursor.
    ``columnar``: runs a BINARY or BINARY2 result whose columns it can take
    (:func:`taprunner.formats.arrow.columnar_fields`) instead of the cursor; ``conn``
    then only prepares the statement, for the FIELDs.

    Raises
    ------
    TapUsageError
        Bad ADQL, unknown tables, columns or functions.
    TapQueryError
        The database failed the query (e.g. statement timeout).
    """
    try:
        translation = _translations.get(request.query, catalog, request.maxrec + 1)
    except AdqlError as exc:
        raise TapUsageError(str(exc)) from exc
    fmt = request.format
    if request.uploads or fmt.takes(DataPath.COPY):
        # Uploads make new tables; formats COPY can write mostly go through it,
        # which does not run the prepared statement: a stale one would go unnoticed.
        statements = None
    if request.uploads or not fmt.takes(DataPath.ARROW):
        columnar = None  # another session does not see the uploaded tables
    if session and fmt.takes(DataPath.FETCH):
        return await _run_in_session(
            conn, request, translation, catalog, sink, timeout, statements
        )
    if statements is None:
        return await _run(
            conn, request, translation, catalog, sink, timeout, role, None, columnar
        )
    written = False

    async def tracked(data: bytes) -> None:
        nonlocal written
        written = True
        await sink(data)

    for attempt in (1, 2):
        try:
            return await _run(
                conn,
                request,
                translation,
                catalog,
                tracked,
                timeout,
                role,
                statements,
                columnar,
            )
        except (asyncpg.InvalidCachedStatementError, ColumnsChanged) as exc:
            # The tables changed shape since the statement was prepared: prepare
            # it afresh, unless rows went out already.
            statements.discard(translation.sql)
            if written or attempt == 2:
                if isinstance(exc, ColumnsChanged):
                    raise TapQueryError(f"query failed: {exc}") from exc
                raise _failure(exc, timeout) from exc
    raise AssertionError("unreachable")


async def _run(
    conn: Connection,
    request: TapRequest,
    translation: Translation,
    catalog: Catalog,
    sink: Sink,
    timeout: float,
    role: str | None,
    statements: StatementCache | None = None,
    columnar: Columnar | None = None,
) -> QueryOutcome:
    """The query in its read-only transaction (or, when ``columnar`` takes it,
    only its preparation). A cached statement that no longer fits its tables
    raises InvalidCachedStatementError for the caller to retry."""
    tap_catalog = catalog if isinstance(catalog, DescribingCatalog) else None
    try:
        async with _read_only(conn, role, timeout):
            statement = await _prepare(conn, translation.sql, statements)
            attributes = statement.get_attributes()
            fields = _fields(translation.columns, attributes, tap_catalog)
            if request.format.takes(DataPath.COPY):
                return await _copied(
                    conn, statement, translation.sql, request, fields, sink
                )
            pg_types = [attribute.type.name for attribute in attributes]
            if columnar is None or not columnar_fields(fields, pg_types):
                return await _streamed(statement, request, fields, sink, timeout)
        encoder = _encoder(request, fields)
        if not isinstance(encoder, VOTableEncoder):
            raise TypeError(f"{request.format.name}: the Arrow path needs a VOTable")
        try:
            return await columnar.run(
                translation.sql, encoder, pg_types, request.maxrec, timeout, sink
            )
        except ColumnarUnavailable:
            pass  # nothing was written: asyncpg serves it
        except ColumnsChanged as exc:
            if statements is not None:
                raise  # described from a stale cached statement: retry afresh
            raise TapQueryError(
                "query failed: the tables changed while it ran; please retry"
            ) from exc
        return await _run(
            conn, request, translation, catalog, sink, timeout, role, statements
        )
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError) or (
            statements is not None
            and isinstance(exc, asyncpg.InvalidCachedStatementError)
        ):
            raise
        raise _failure(exc, timeout) from exc


async def _run_in_session(
    conn: Connection,
    request: TapRequest,
    translation: Translation,
    catalog: Catalog,
    sink: Sink,
    timeout: float,
    statements: StatementCache | None,
) -> QueryOutcome:
    """A small result on a prepared session (the FETCH path): prepare (or
    reuse), then one Bind/Execute; PostgreSQL runs it in its own read-only
    transaction."""
    tap_catalog = catalog if isinstance(catalog, DescribingCatalog) else None
    try:
        statement = await _prepare(conn, translation.sql, statements)
        fields = _fields(translation.columns, statement.get_attributes(), tap_catalog)
        rows = await statement.fetch()
    except asyncpg.InvalidCachedStatementError:
        if statements is None:
            raise
        statements.discard(translation.sql)  # the table changed: prepare afresh
        return await _run_in_session(
            conn, request, translation, catalog, sink, timeout, None
        )
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            raise
        raise _failure(exc, timeout) from exc
    encoder = _encoder(request, fields)
    overflow = len(rows) > request.maxrec
    rows = rows[: request.maxrec]
    await sink(encoder.header())
    if rows:
        await sink(encoder.encode(rows))
    await sink(encoder.footer(overflow=overflow))
    return QueryOutcome(len(rows), overflow)


class _TranslationCache:
    """Recent translations, reused while the catalogue object is the same one.

    Parsing dominates a tiny query's translation (about a millisecond); clients
    often repeat the same query. A reloaded catalogue or one with uploads is a
    new object, so nothing stale is ever returned.
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int], tuple[Catalog, Translation]] = (
            OrderedDict()
        )

    def get(self, adql: str, catalog: Catalog, limit: int) -> Translation:
        key = (adql, limit)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is catalog:
            self._entries.move_to_end(key)
            return entry[1]
        translation = translate(adql, catalog, limit=limit)
        self._entries[key] = (catalog, translation)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return translation


_translations = _TranslationCache()


@asynccontextmanager
async def _read_only(
    conn: Connection, role: str | None, timeout: float
) -> AsyncIterator[None]:
    """A read-only transaction as ``role`` with statement and idle timeouts.

    The idle timeout ends the session when the transaction waits longer than
    ``timeout`` between statements, e.g. between cursor fetches while the sink
    waits for a client that does not read, which statement_timeout does not
    cover. Begun with one simple-query message (BEGIN and the SET LOCALs), which
    saves round trips over asyncpg's transaction manager.
    """
    ms = timeout_ms(timeout)
    setup = (
        f"BEGIN READ ONLY; SET LOCAL statement_timeout = {ms};"
        f" SET LOCAL idle_in_transaction_session_timeout = {ms}"
    )
    if role is not None:
        setup += f'; SET LOCAL ROLE "{role}"'
    await conn.execute(setup)
    try:
        yield
    except BaseException:
        # A connection the server closed (e.g. the idle timeout) raises
        # InterfaceError here, a pooled one even for is_closed(): nothing to undo.
        with contextlib.suppress(
            asyncpg.PostgresError, asyncpg.InterfaceError, OSError
        ):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


#: SQLSTATEs of a cancelled statement (e.g. its timeout) and of a missing privilege.
QUERY_CANCELED = "57014"
INSUFFICIENT_PRIVILEGE = "42501"


def query_error(sqlstate: str | None, message: str, timeout: float) -> TapError:
    """The TAP error for a database error (``sqlstate``, ``message``) raised by
    the user's query, which ran with the statement timeout ``timeout``."""
    if sqlstate == QUERY_CANCELED:
        return TapQueryError(f"query cancelled: {message} (limit {timeout:g} s)")
    if sqlstate == INSUFFICIENT_PRIVILEGE:
        return TapUsageError(f"not allowed: {message}")
    return TapQueryError(f"query failed: {message}")


def _failure(exc: asyncpg.PostgresError, timeout: float) -> TapError:
    return query_error(exc.sqlstate, _clean(exc), timeout)


async def _streamed(
    statement: asyncpg.prepared_stmt.PreparedStatement,
    request: TapRequest,
    fields: list[FieldSpec],
    sink: Sink,
    timeout: float,
) -> QueryOutcome:
    """The CURSOR path: rows from a cursor, streamed through the format's encoder,
    with an overflow or error status in the footer."""
    encoder = _encoder(request, fields)
    cursor = await statement.cursor()
    # Fetch before the header goes out: most query failures surface in the first
    # batch, and then the sync client still gets a plain error document.
    batch = await cursor.fetch(BATCH)
    await sink(encoder.header())
    if len(batch) == BATCH:  # a large result: stop the heap's page churn
        keep_heap_pad()
    try:
        with _batch_friendly_gc():
            rows, overflow = await _stream(cursor, batch, encoder, sink, request.maxrec)
    except asyncpg.PostgresError as exc:
        if not isinstance(exc, asyncpg.PostgresConnectionError):
            # Rows went out already: end the document with the error status.
            await sink(encoder.footer(error=str(_failure(exc, timeout))))
        raise
    await sink(encoder.footer(overflow=overflow))
    return QueryOutcome(rows, overflow)


def _encoder(request: TapRequest, fields: list[FieldSpec]) -> RowEncoder:
    """The encoder of ``request``'s result, with its QUERY and warnings."""
    return request.format.encoder(
        fields, query=request.query, maxrec_clamped=request.maxrec_clamped
    )


async def _stream(
    cursor: asyncpg.cursor.Cursor[asyncpg.Record],
    batch: list[asyncpg.Record],
    encoder: RowEncoder,
    sink: Sink,
    maxrec: int,
) -> tuple[int, bool]:
    """Encode ``batch`` and the cursor's further rows into ``sink``, up to ``maxrec``.

    The next batch is fetched while the current one is encoded (PostgreSQL works on
    the other CPU meanwhile). Returns the number of rows written and whether more
    than ``maxrec`` were there.
    """
    rows = 0
    overflow = False
    pending: asyncio.Future[list[asyncpg.Record]] | None = None
    try:
        while batch:
            room = maxrec - rows
            if len(batch) > room:
                overflow = True
                batch = batch[:room]
            elif len(batch) == BATCH:  # a short batch was the last one
                pending = asyncio.ensure_future(cursor.fetch(BATCH))
            if batch:
                await sink(encoder.encode(batch))
                rows += len(batch)
            if pending is None:
                break
            batch, pending = await pending, None
    finally:
        await _settle(pending)
    return rows, overflow


async def _settle(pending: asyncio.Future[Any] | None) -> None:
    """Cancel a prefetch still running and wait until it has let go of the connection.

    Its outcome is dropped: the exception that brought us here is the one to raise.
    """
    if pending is None:
        return
    pending.cancel()
    await asyncio.wait([pending])
    if not pending.cancelled():
        pending.exception()  # retrieved, so asyncio does not log it


@contextmanager
def _batch_friendly_gc() -> Iterator[None]:
    """Keep the garbage collector from rescanning the heap while batches stream.

    Each batch allocates some 10,000 Records (GC-tracked containers). With the
    default thresholds that means a young collection every 700 of them and a full
    one every few batches, the latter traversing the whole heap of a warm runner
    (numpy, astropy, asyncpg, ...). ``gc.freeze()`` moves the existing objects out
    of the collector's sight (O(1)), and a young threshold above a batch's worth of
    Records lets them die by reference counting before anything scans them. For 1M
    rows, measured: the default GC added about 0.9 s, frozen 0.2 s, with both
    0.002 s. Cycles are still collected, and both settings are restored afterwards.
    Unlike ``gc.disable()`` this is harmless in the server (sync endpoint,
    concurrent requests). Only the outermost user changes anything: a heap that is
    already frozen (someone else's setting, or a concurrent query) is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], 5 * BATCH), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _copied(
    conn: Connection,
    statement: asyncpg.prepared_stmt.PreparedStatement,
    sql: str,
    request: TapRequest,
    fields: list[FieldSpec],
    sink: Sink,
) -> QueryOutcome:
    """A format COPY can write: by COPY when the columns allow, else by the cursor
    through the encoder (no overflow is signalled: such formats have no trailer)."""
    copy = request.format.copy
    if copy is not None and copy_matches(fields):
        # PostgreSQL writes the bytes itself (the fastest path); cap at MAXREC rows.
        capped = f"SELECT * FROM ({sql}) AS q LIMIT {request.maxrec}"
        count = await copy(conn, capped, sink)
        return QueryOutcome(count, False)
    encoder = _encoder(request, fields)
    await sink(encoder.header())
    rows = 0
    cursor = await statement.cursor()
    while batch := await cursor.fetch(BATCH):
        batch = batch[: request.maxrec - rows]
        if not batch:
            break
        await sink(encoder.encode(batch))
        rows += len(batch)
    await sink(encoder.footer())
    return QueryOutcome(rows, False)


_CONTEXT = re.compile(r"\s+")


def _clean(exc: BaseException) -> str:
    return _CONTEXT.sub(" ", str(exc)).strip()

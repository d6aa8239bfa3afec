"""Running one TAP query: translate, execute read-only, stream encoded bytes to a sink.

Shared by the async runner (sink: a result file) and the sync endpoint (sink: the
HTTP response). User SQL runs in a read-only transaction as the role
``aiouws_query`` with a statement timeout. :func:`run_query` picks the data path
the output format takes (:class:`~taprunner.formats.registry.DataPath`): the
columnar session, one fetch on a prepared session, or the cursor and COPY
streaming of :mod:`.streaming`. Its caches are in :mod:`.caches`, its outcome and
error types in :mod:`.outcome`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Protocol

import asyncpg
from sqlglot import exp

from aiouws.storage.database import Database
from aiouws.storage.outage import unavailable_cause
from taprunner.adql.limits import DEFAULT_LIMITS, QueryLimits
from taprunner.adql.model import AdqlError, Catalog, Translation
from taprunner.errors import ReplicaBehind, TapQueryError, TapUsageError
from taprunner.formats.arrow import ColumnsChanged, columnar_fields
from taprunner.formats.registry import ArrowEncoder, DataPath
from taprunner.formats.tdcopy import copy_columns
from taprunner.query.bincopy import stream_binary_copy
from taprunner.query.bytelimits import FIRST_ROWS, ResultLimits
from taprunner.query.caches import StatementCache, TranslationCache, prepare
from taprunner.query.copytext import stream_transcoded
from taprunner.query.outcome import (
    ColumnarUnavailable,
    QueryOutcome,
    Sink,
    Stop,
    cancel_statement,
    failure,
)
from taprunner.query.querylog import QueryTag, logged
from taprunner.query.resultfields import result_fields
from taprunner.query.streaming import encoder_for, stream_copied, stream_cursor
from taprunner.request import TapRequest
from taprunner.schema.catalog import Connection
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings

__all__ = ["Columnar", "run_query", "timeout_ms"]

_TRANSLATIONS = TranslationCache()


class Columnar(Protocol):
    """Runs a result from Arrow batches outside asyncpg (:mod:`.columnar`)."""

    async def run(
        self,
        sql: str,
        encoder: ArrowEncoder,
        pg_types: Sequence[str],
        maxrec: int,
        timeout: float,
        sink: Sink,
        limits: ResultLimits,
    ) -> QueryOutcome: ...

    def report_backend(self, report: Callable[[int, str], None]) -> None: ...

    def use_role(self, role: str) -> None: ...


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
    binary_copy: bool = False,
    statement: exp.Expr | None = None,
    tag: QueryTag | None = None,
    limits: QueryLimits = DEFAULT_LIMITS,
    result_limits: ResultLimits | None = None,
    rows_bound: int | None = None,
    database: Database | None = None,
) -> QueryOutcome:
    """Translate and run ``request`` on ``conn``, writing the encoded result to sink.

    With ``statements`` (the cache of ``conn``), a repeated query without uploads
    in a format that does not take the COPY path reuses its prepared statement.
    ``session``: ``conn`` is already a read-only session as the query role with
    ``timeout`` as its statement timeout (the fast lane's): the query runs in a
    transaction without a role change (but to a session role, ``role``, of an
    owner with proprietary access). Its rows come through a cursor like any
    others (bounded in bytes: few rows may still be many bytes).
    ``columnar``: runs a result in a format taking the ARROW path (BINARY,
    BINARY2) whose columns it can take
    (:func:`taprunner.formats.arrow.columnar_fields`) instead of the cursor;
    ``conn`` then only prepares the statement, for the FIELDs.
    ``binary_copy``: such a result is read by binary COPY on ``conn`` itself,
    inside the query's transaction (:mod:`.bincopy`), instead of ``columnar``.
    ``statement``: the query already parsed (the fast lane's), if at hand.
    ``rows_bound``: the most rows the query can return (MAXREC, its TOP), if
    known: on a ``session`` without a role change, a result bounded below
    :data:`~.bytelimits.FIRST_ROWS` rows in a format taking the FETCH path is
    fetched in one round trip (no transaction, no cursor: the rows the
    cursor's first batch would hold), through the same byte limits.
    ``tag``: whose query it is, for its line in the query log
    (:mod:`.querylog`; every TAP query passes here); default: anonymous sync.
    ``limits``: the bounds of the query (:mod:`taprunner.adql.limits`); it is
    translated off the event loop (:meth:`TranslationCache.translate`).
    ``result_limits``: bytes per value and per result (:mod:`.bytelimits`;
    default: an async result file's of the default settings); a result they cut
    short ends marked as such (``QueryOutcome.cut``). ``database``: the login
    of ``conn``, through which a COPY cut short is cancelled at once
    (:class:`~.outcome.HeldSink`); None: it runs to its end.

    Raises
    ------
    TapUsageError
        Bad ADQL, unknown tables, columns or functions.
    TapQueryError
        The database failed the query (e.g. statement timeout).
    """

    async def run(counted: Sink) -> QueryOutcome:
        return await _run_query(
            conn,
            request,
            catalog,
            counted,
            timeout=timeout,
            role=role,
            statements=statements,
            session=session,
            columnar=columnar,
            binary_copy=binary_copy,
            statement=statement,
            limits=limits,
            result_limits=result_limits or ResultLimits.for_file(TapSettings()),
            rows_bound=rows_bound,
            stop=None
            if database is None
            else partial(cancel_statement, database, conn),
        )

    return await logged(tag or QueryTag(), request, sink, run)


async def _run_query(
    conn: Connection,
    request: TapRequest,
    catalog: Catalog,
    sink: Sink,
    *,
    timeout: float,
    role: str | None,
    statements: StatementCache | None,
    session: bool,
    columnar: Columnar | None,
    binary_copy: bool,
    statement: exp.Expr | None,
    limits: QueryLimits,
    result_limits: ResultLimits,
    rows_bound: int | None = None,
    stop: Stop | None = None,
) -> QueryOutcome:
    """:func:`run_query`, unlogged."""
    try:
        translation = await _TRANSLATIONS.translate(
            request.query, catalog, request.maxrec + 1, statement, limits
        )
    except AdqlError as exc:
        raise TapUsageError(str(exc)) from exc
    fmt = request.format
    if request.uploads or fmt.takes(DataPath.COPY) or fmt.takes(DataPath.COPY_TEXT):
        # Uploads make new tables; formats COPY can write mostly go through it,
        # which does not run the prepared statement: a stale one would go unnoticed.
        statements = None
    if request.uploads or not fmt.takes(DataPath.ARROW):
        columnar = None  # another session does not see the uploaded tables
        binary_copy = False
    if session and role == QUERY_ROLE:
        role = None  # the session is the query role's already
    at_once = (
        session
        and role is None
        and columnar is None
        and not binary_copy
        and rows_bound is not None
        and rows_bound < FIRST_ROWS
        and fmt.takes(DataPath.FETCH)
        and not fmt.takes(DataPath.COPY)
    )
    if statements is None:
        return await _run(
            conn,
            request,
            translation,
            catalog,
            sink,
            timeout,
            role,
            result_limits,
            None,
            columnar,
            binary_copy=binary_copy,
            at_once=at_once,
            stop=stop,
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
                result_limits,
                statements,
                columnar,
                binary_copy=binary_copy,
                at_once=at_once,
                stop=stop,
            )
        except (asyncpg.InvalidCachedStatementError, ColumnsChanged) as exc:
            # The tables changed shape since the statement was prepared: prepare
            # it afresh, unless rows went out already.
            statements.discard(translation.sql)
            if written or attempt == 2:
                if isinstance(exc, ColumnsChanged):
                    raise TapQueryError(f"query failed: {exc}") from exc
                raise failure(exc, timeout) from exc
    raise AssertionError("unreachable")


async def _run(
    conn: Connection,
    request: TapRequest,
    translation: Translation,
    catalog: Catalog,
    sink: Sink,
    timeout: float,
    role: str | None,
    limits: ResultLimits,
    statements: StatementCache | None = None,
    columnar: Columnar | None = None,
    *,
    binary_copy: bool = False,
    at_once: bool = False,
    stop: Stop | None = None,
) -> QueryOutcome:
    """The query in its read-only transaction (or, when ``columnar`` takes it,
    only its preparation; ``at_once``: the FETCH path, outside a transaction on
    a read-only session, see :func:`run_query`; ``stop``: cancels a COPY cut
    short). A cached statement that no longer fits its tables raises
    InvalidCachedStatementError for the caller to retry."""
    try:
        if at_once:
            statement = await prepare(conn, translation.sql, statements)
            fields = result_fields(
                translation.columns, statement.get_attributes(), catalog
            )
            return await stream_cursor(
                statement, request, fields, sink, timeout, limits, at_once=True
            )
        text_floats = request.format.takes(DataPath.COPY_TEXT)
        async with _read_only(conn, role, timeout, text_floats=text_floats):
            statement = await prepare(conn, translation.sql, statements)
            attributes = statement.get_attributes()
            fields = result_fields(translation.columns, attributes, catalog)
            pg_types = [attribute.type.name for attribute in attributes]
            names = [attribute.name for attribute in attributes]
            if request.format.takes(DataPath.COPY_TEXT) and copy_columns(
                fields, pg_types, names
            ):
                return await stream_transcoded(
                    conn,
                    translation.sql,
                    request,
                    fields,
                    names,
                    pg_types,
                    sink,
                    timeout,
                    limits,
                    stop,
                )
            if request.format.takes(DataPath.COPY):
                return await stream_copied(
                    conn,
                    statement,
                    translation.sql,
                    request,
                    fields,
                    sink,
                    timeout,
                    limits,
                    stop,
                )
            if binary_copy and columnar_fields(fields, pg_types):
                return await stream_binary_copy(
                    conn,
                    translation.sql,
                    encoder_for(request, fields),
                    pg_types,
                    request.maxrec,
                    timeout,
                    sink,
                    limits,
                    stop,
                )
            if columnar is None or not columnar_fields(fields, pg_types):
                return await stream_cursor(
                    statement, request, fields, sink, timeout, limits
                )
        encoder = encoder_for(request, fields)
        if not isinstance(encoder, ArrowEncoder):
            raise TypeError(f"{request.format.name}: no encoder of Arrow batches")
        try:
            return await columnar.run(
                translation.sql,
                encoder,
                pg_types,
                request.maxrec,
                timeout,
                sink,
                limits,
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
            conn, request, translation, catalog, sink, timeout, role, limits, statements
        )
    except asyncpg.PostgresError as exc:
        if unavailable_cause(exc) is not None or (
            statements is not None
            and isinstance(exc, asyncpg.InvalidCachedStatementError)
        ):
            raise
        raise failure(exc, timeout) from exc


@asynccontextmanager
async def _read_only(
    conn: Connection, role: str | None, timeout: float, *, text_floats: bool = False
) -> AsyncIterator[None]:
    """A read-only transaction as ``role`` with statement and idle timeouts.

    The idle timeout ends the session when the transaction waits longer than
    ``timeout`` between statements, e.g. between cursor fetches while the sink
    waits for a client that does not read, which statement_timeout does not
    cover. Begun with one simple-query message (BEGIN and the SET LOCALs), which
    saves round trips over asyncpg's transaction manager. JIT is off in every
    session (:data:`aiouws.storage.database.SESSION_SETTINGS`).

    ``text_floats``: floats as text are the shortest that round-trip
    (``extra_float_digits = 1``, PostgreSQL's default since 12), for the
    TABLEDATA COPY path (:func:`.copytext.stream_transcoded`), set here rather
    than in a round trip of its own.
    """
    ms = timeout_ms(timeout)
    setup = (
        f"BEGIN READ ONLY; SET LOCAL statement_timeout = {ms};"
        f" SET LOCAL idle_in_transaction_session_timeout = {ms}"
    )
    if text_floats:
        setup += "; SET LOCAL extra_float_digits = 1"
    if role is not None:
        setup += f'; SET LOCAL ROLE "{role}"'
    try:
        await conn.execute(setup)
    except asyncpg.InvalidParameterValueError:
        # No such role (22023): the session role, made on the primary a moment
        # ago, is not replayed yet where this connection went (the catalogue
        # may have come from a server that has it). The failed BEGIN is undone.
        await conn.execute("ROLLBACK")
        if role is None:
            raise
        raise ReplicaBehind() from None
    try:
        yield
    except BaseException:
        # A connection the server closed (e.g. the idle timeout) raises
        # InterfaceError here, a pooled one even for is_closed(): nothing to undo.
        try:
            await conn.execute("ROLLBACK")
        except asyncpg.InternalClientError:
            # A binary COPY cancelled mid-stream leaves asyncpg's protocol in
            # its COPY state: the connection is done for (the runner and the
            # pool reconnect), and the cancellation stays what is raised.
            conn.terminate()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            pass
        raise
    await conn.execute("COMMIT")

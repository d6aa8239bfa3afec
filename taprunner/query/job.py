"""The ``tap`` job kind's entry point, run inside a warm runner process.

``run(ctx)`` parses the TAP parameters, runs the query through
:func:`taprunner.query.execute.run_query` into the result file ``result`` and, on a
failure, leaves a DALI error document ``error.vot`` for ``{job}/error``.

The runner keeps its database connections (asyncpg, and ADBC for the columnar
path of :mod:`taprunner.query.columnar`) and the TAP_SCHEMA catalogue warm between
jobs; its settings and database come from the environment the supervisor gives
the runner (:meth:`taprunner.settings.RunnerConfig.from_env`), never from files.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from aiouws.jobapi import NO_SPACE, JobContext, is_disk_full
from aiouws.storage.backends import IDENTITY_SQL, parse_identity
from aiouws.storage.database import QUERY_ROLE, Database
from aiouws.storage.outage import DRIVER_ERRORS, unavailable_message
from taprunner.adql.sqltext import quote_identifier
from taprunner.errors import DiskFull, ReplicaBehind, TapError
from taprunner.formats.votable import error_document
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.caches import StatementCache
from taprunner.query.execute import Columnar, run_query
from taprunner.query.heap import release_heap
from taprunner.query.querylog import QueryRecord, QueryTag
from taprunner.query.uploadlimits import UploadLimits
from taprunner.query.uploads import job_parts, load_uploads
from taprunner.request import TapRequest, parse_request
from taprunner.schema.catalog import Connection, TapCatalog
from taprunner.settings import RunnerConfig, TapSettings

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "catalog_as",
    "execute",
    "job_request",
    "job_timeout",
    "owner_role",
    "run",
    "tap_request",
    "unavailable",
    "write_error",
    "write_error_async",
]

log = logging.getLogger(__name__)

#: The media type of the DALI error document.
VOTABLE_MEDIA = "application/x-votable+xml"
#: Seconds a loaded TAP_SCHEMA catalogue is reused before it is read again.
CATALOG_TTL = 5.0


@dataclass
class _Warm:
    """What a runner process keeps between jobs."""

    conn: asyncpg.Connection | None = None
    statements: StatementCache = field(default_factory=StatementCache)
    #: TAP_SCHEMA as each role sees it, and when it was read.
    catalogs: dict[str, tuple[TapCatalog, float]] = field(default_factory=dict)
    columnar_session: Columnar | None = None
    #: ``conn``'s backend: its pid and ``backend_start`` (ISO), for the supervisor.
    backend: tuple[int, str] | None = None
    _config: RunnerConfig | None = None

    @property
    def config(self) -> RunnerConfig:
        """The runner's settings and database, read once from its environment."""
        if self._config is None:
            self._config = RunnerConfig.from_env()
        return self._config

    @property
    def binary_copy(self) -> bool:
        """Whether binary results come by binary COPY on the warm connection
        (:mod:`.bincopy`; ``tap_columnar_source = "copy"``)."""
        return self.config.tap.columnar and self.config.tap.columnar_source == "copy"

    def columnar(self) -> Columnar | None:
        """The ADBC session of this runner (None when ``TapSettings.columnar`` is
        off or binary results come by binary COPY instead)."""
        if not self.config.tap.columnar or self.binary_copy:
            return None
        if self.columnar_session is None:
            from taprunner.query.columnar import (
                ColumnarSession,  # only runners load ADBC
            )

            self.columnar_session = ColumnarSession(self.config.database)
        return self.columnar_session

    async def connection(self, *, writable: bool = False) -> asyncpg.Connection:
        """The warm connection: on a catalogue replica in turn (if any), or on
        the primary for a ``writable`` job (uploads create temporary tables;
        a standby refuses them). A runner moves to the primary for such a job
        and back to the replicas for the next one."""
        database = self.config.database
        if self.conn is not None and database.replicas and not self.conn.is_closed():
            on_primary = getattr(self.conn, "server_dsn", None) == database.dsn
            if on_primary != writable:
                self.conn.terminate()
        if self.conn is None or self.conn.is_closed():
            if writable:
                database = database.writable()
            self.conn = await database.connect(name="runner")
            self.statements = StatementCache()
            self.backend = await backend_identity(self.conn)
        return self.conn

    async def tap_catalog(
        self, conn: asyncpg.Connection, role: str = QUERY_ROLE
    ) -> TapCatalog:
        """The tables ``role`` may read (see :func:`catalog_as`), reused for
        CATALOG_TTL seconds."""
        now = time.monotonic()
        cached = self.catalogs.get(role)
        if cached is None or now - cached[1] > CATALOG_TTL:
            cached = (await catalog_as(conn, role), now)
            self.catalogs[role] = cached
        return cached[0]


async def catalog_as(conn: Connection, role: str) -> TapCatalog:
    """TAP_SCHEMA as ``role`` sees it (its row-level security hides the tables
    ``role`` may not read).

    Raises
    ------
    ReplicaBehind
        ``role`` does not exist where ``conn`` went: a session role the server
        made a moment ago on the primary, not yet replayed by that replica.
    """
    async with conn.transaction(readonly=True):
        try:
            await conn.execute(f"SET LOCAL ROLE {quote_identifier(role)}")
        except asyncpg.InvalidParameterValueError:  # no such role (22023)
            raise ReplicaBehind() from None
        return await TapCatalog.load(conn)


async def owner_role(conn: Connection, owner: str | None) -> str:
    """The role a job of ``owner`` queries as: the session role the server
    recorded for the owner (proprietary tables), else the query role."""
    if owner is None:
        return QUERY_ROLE
    role: str = await conn.fetchval("SELECT tap_acl.session_role($1)", owner)
    return role


_warm = _Warm()


async def backend_identity(conn: asyncpg.Connection) -> tuple[int, str] | None:
    """``conn``'s backend pid and start time (ISO), which the supervisor uses to
    terminate the query should this runner die (None if it cannot be read)."""
    return parse_identity(await conn.fetchval(IDENTITY_SQL))


def job_timeout(ctx: JobContext, tap: TapSettings) -> float:
    """Seconds the job's query may run: its execution duration, else ``tap``'s."""
    return float(ctx.execution_duration or tap.timeout)


def tap_request(pairs: Iterable[tuple[str, str]], tap: TapSettings) -> TapRequest:
    """The TAP request of a job's (name, value) parameters (raises TapUsageError
    for bad ones)."""
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name.lower(), []).append(value)
    return parse_request(
        params, maxrec_default=tap.maxrec_default, maxrec_hard=tap.maxrec_hard
    )


def job_request(ctx: JobContext, tap: TapSettings) -> TapRequest:
    """The job's TAP request (raises TapUsageError for bad parameters)."""
    return tap_request(((n, v) for n, v, _ in ctx.parameter_list), tap)


async def execute(
    ctx: JobContext,
    conn: Connection,
    catalog: TapCatalog,
    tap: TapSettings,
    *,
    statements: StatementCache | None = None,
    session: bool = False,
    columnar: Columnar | None = None,
    binary_copy: bool = False,
    request: TapRequest | None = None,
    statement: exp.Expr | None = None,
    observe: Callable[[QueryRecord], None] | None = None,
    role: str = QUERY_ROLE,
    rows_bound: int | None = None,
    database: Database | None = None,
) -> None:
    """Run the job's query on ``conn`` as ``role`` into the result ``result``,
    with notes. ``database``: ``conn``'s login, to stop a COPY cut short
    (see :func:`.execute.run_query`).

    ``request``: the job's TAP request if the caller parsed it already (the fast
    lane's, from the prepare hook), else parsed here from the job's parameters;
    ``statement``: its query already parsed, if at hand; ``rows_bound``: the
    most rows it can return, if known (see :func:`.execute.run_query`).
    ``observe``: gets the query's :class:`~taprunner.query.querylog.QueryRecord`
    (the server's metrics, for jobs run in the server).

    Raises TapError (after writing the DALI error document ``error.vot``) when the
    query fails; other database errors propagate for the caller to handle.
    """
    try:
        if request is None:
            request = job_request(ctx, tap)
        timeout = job_timeout(ctx, tap)
        async with load_uploads(
            conn,
            request.uploads,
            job_parts(ctx.fetch_file),
            catalog,
            max_bytes=tap.upload_bytes,
            role=role,
            limits=UploadLimits.of(tap),
        ) as full_catalog:
            name = f"result.{request.format.extension}"
            async with ctx.open_result_async("result", request.media_type, name) as out:

                async def sink(data: bytes) -> None:
                    await out.write(data)

                outcome = await run_query(
                    conn,
                    request,
                    full_catalog,
                    sink,
                    timeout=timeout,
                    role=role,
                    statements=statements,
                    session=session,
                    columnar=columnar,
                    binary_copy=binary_copy,
                    statement=statement,
                    tag=QueryTag(ctx.owner, ctx.job_id, observe),
                    limits=tap.query_limits(),
                    result_limits=ResultLimits.for_file(tap),
                    rows_bound=rows_bound,
                    database=database,
                )
    except TapError as exc:
        await write_error_async(ctx, str(exc))
        raise
    except OSError as exc:
        if not is_disk_full(exc):
            raise  # e.g. the database connection: the caller's to handle
        await write_error_async(ctx, NO_SPACE)
        raise DiskFull(NO_SPACE) from exc
    ctx.note("rows", outcome.rows)
    if outcome.overflow or outcome.cut is not None:
        ctx.note("overflow", "true")
    if outcome.cut is not None:
        ctx.note("truncated", outcome.cut)


async def unavailable(ctx: JobContext, exc: BaseException) -> TapError:
    """The job's error for a database it cannot use (document written)."""
    message = unavailable_message(exc)
    await write_error_async(ctx, message)
    return TapError(message)


async def write_error_async(ctx: JobContext, message: str) -> None:
    """:func:`write_error` off the event loop (which is the server's in the
    fast lane): an object store's round trips must not stall it."""
    await asyncio.to_thread(write_error, ctx, message)


def write_error(ctx: JobContext, message: str) -> None:
    """The DALI error document that ``{job}/error`` serves, in the results store:
    complete or not at all. On a full disk (or an unreachable store) there is
    none, and ``{job}/error`` serves the job's error message instead."""
    try:
        ctx.write_file("error.vot", error_document(message), VOTABLE_MEDIA)
    except Exception as exc:  # the job's failure is what it reports
        log.warning("cannot write the error document of job %s: %s", ctx.job_id, exc)


def _has_uploads(ctx: JobContext, tap: TapSettings) -> bool:
    """Whether the job uploads tables (False for bad parameters, which
    :func:`execute` reports)."""
    try:
        return bool(job_request(ctx, tap).uploads)
    except TapError:
        return False


async def run(ctx: JobContext) -> None:
    """Run one async TAP query job (the runner's entry point)."""
    try:
        conn = await _warm.connection(writable=_has_uploads(ctx, _warm.config.tap))
        if _warm.backend is not None:
            ctx.report_backend(*_warm.backend)
        role = await owner_role(conn, ctx.owner)
        catalog = await _warm.tap_catalog(conn, role)
        columnar = _warm.columnar()
        if columnar is not None:  # its backend, now or once it connects
            columnar.report_backend(ctx.report_backend)
            columnar.use_role(role)
        await execute(
            ctx,
            conn,
            catalog,
            _warm.config.tap,
            statements=_warm.statements,
            columnar=columnar,
            binary_copy=_warm.binary_copy,
            role=role,
            database=_warm.config.database,
        )
    except DRIVER_ERRORS as exc:
        if _warm.conn is not None:
            _warm.conn.terminate()  # broken or not, start afresh next time
        _warm.conn = None
        raise await unavailable(ctx, exc) from exc
    finally:
        release_heap()  # after a large result: back to the runner's own size

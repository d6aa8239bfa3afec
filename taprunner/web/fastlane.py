"""The async TAP fast lane: small queries run in the server, not in a runner.

A query whose result is bounded small (MAXREC, or the query's own TOP, at most
``TapSettings.inline_rows``) and that uploads nothing is claimed at once and run on the
server's event loop (:class:`aiouws.kinds.InlineLane`): no queueing behind big
jobs and no hand-over to a runner process. Its encoding is bounded by the row
limit; waiting for PostgreSQL does not block the loop. The lane keeps its own
few connections (with prepared statements). Everything else about the job
(phases, ABORT, execution duration, leases, result files, error documents) is
as in a runner.

Each job's parameters and query are parsed once in the server, off the event
loop: the kind's prepare hook makes a :class:`LaneQuery` (the TapRequest and,
when the lane must read the query's TOP, the row bound and the statement parsed
for it); the lane's test reads it and the run gets it (``ctx.prepared``), the
statement going on to the translator. Row bounds of recent queries are kept by
digest (:class:`_Bounds`), never by text.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from sqlglot import exp

from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane
from aiouws.storage.database import Database
from aiouws.storage.outage import DRIVER_ERRORS
from taprunner.adql.limits import QueryLimitError, parse_limited
from taprunner.adql.model import AdqlError
from taprunner.adql.translate import row_bound
from taprunner.errors import TapError
from taprunner.query.caches import (
    DIGEST_ON_LOOP,
    TRANSLATORS,
    StatementCache,
    digest,
)
from taprunner.query.execute import timeout_ms
from taprunner.query.job import (
    execute,
    job_timeout,
    owner_role,
    unavailable,
    write_error_async,
)
from taprunner.query.querylog import QueryRecord
from taprunner.request import TapRequest
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings
from taprunner.web.state import TapState

__all__ = ["SESSION_SETUP", "LaneQuery", "TapInline", "lane_connection"]


@dataclass
class _Warm:
    """A lane connection and its prepared statements (asyncpg's pool keeps no
    per-connection state of ours, so the lane keeps its own few connections).

    The session is read-only, as the query role, for good: the lane's small
    queries then run in one round trip each, without BEGIN and COMMIT.
    """

    conn: asyncpg.Connection
    statements: StatementCache = field(default_factory=StatementCache)
    timeout_ms: int = 0  # the session's statement_timeout

    async def limit(self, seconds: float) -> None:
        ms = timeout_ms(seconds)
        if ms != self.timeout_ms:
            await self.conn.execute(f"SET statement_timeout = {ms}")
            self.timeout_ms = ms


log = logging.getLogger(__name__)

#: The lane's session (:func:`lane_connection`): read-only and as the query
#: role; without JIT like every session (``SESSION_SETTINGS``), which the FETCH
#: path, outside a transaction, runs on.
SESSION_SETUP = f'SET ROLE "{QUERY_ROLE}"; SET default_transaction_read_only = on'

#: Cancel requests for a stopped job's backend, and the seconds between them.
CANCEL_TRIES = 40
CANCEL_INTERVAL = 0.25
#: Seconds a cancelled job waits for its query to stop before it lets go.
STOP_WAIT = 1.5


@dataclass(slots=True)
class LaneQuery:
    """What the TAP kind's prepare hook makes of a job: the lane's test gets it,
    and its run as ``ctx.prepared``.

    ``request``: the job's TapRequest. ``bound``: the most rows its query can
    return by its own TOP, when the lane had to read it (MAXREC above the lane's
    rows) and could; ``statement``: the query as parsed for that, kept only when
    the lane will take the job, for the translator.
    """

    request: TapRequest
    bound: int | None = None
    statement: exp.Expr | None = None

    def rows_bound(self) -> int:
        """The most rows the query can return: MAXREC, or its TOP if lower."""
        maxrec = self.request.maxrec
        return maxrec if self.bound is None else min(maxrec, self.bound)

    def take_statement(self) -> exp.Expr | None:
        """The statement, once: the run takes it, and nothing that outlives the
        job (e.g. its context, kept by its inline slot) holds the parse tree."""
        statement, self.statement = self.statement, None
        return statement


class _Bounds:
    """Row bounds (:func:`row_bound`) of recent queries (``size`` of them), by
    a digest of the text: clients repeat queries, and the texts stay theirs.
    Used from the translator threads (hence the lock)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._bounds: OrderedDict[bytes, int | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> tuple[bool, int | None]:
        """Whether ``key``'s bound is known, and that bound."""
        with self._lock:
            if key not in self._bounds:
                return False, None
            self._bounds.move_to_end(key)
            return True, self._bounds[key]

    def put(self, key: bytes, bound: int | None) -> None:
        with self._lock:
            self._bounds[key] = bound
            if len(self._bounds) > self._size:
                self._bounds.popitem(last=False)

    def __len__(self) -> int:
        return len(self._bounds)


class TapInline:
    """The lane's test and job function; ``state`` is set once the TAP pool is up."""

    def __init__(self, tap: TapSettings, database: Database) -> None:
        self.max_rows = tap.inline_rows
        self.slots = tap.inline_slots
        self.tap = tap
        self.state: TapState | None = None
        self.database = database
        #: Idle lane connections, most recently used last (at most ``slots``).
        self._idle: list[_Warm] = []
        #: Cancel requests of stopped jobs still under way.
        self._stopping: set[asyncio.Task[None]] = set()
        self._bounds = _Bounds()
        self.limits = tap.query_limits()
        #: Gets the query log's record of each query the lane runs (metrics).
        self.observe: Callable[[QueryRecord], None] | None = None

    def lane(self) -> InlineLane | None:
        if self.max_rows <= 0 or self.slots <= 0:
            return None
        return InlineLane(accepts=self.accepts, run=self.run, slots=self.slots)

    async def prepare(self, request: TapRequest) -> LaneQuery:
        """The job's :class:`LaneQuery`: with its query's row bound, read off
        the event loop, when the lane needs it (MAXREC above the lane's rows
        and no upload).

        Raises
        ------
        QueryLimitError
            The query exceeds one of the service's limits (see
            :mod:`taprunner.adql.limits`).
        """
        if (
            self.max_rows <= 0
            or self.slots <= 0
            or request.uploads
            or request.maxrec <= self.max_rows
        ):
            return LaneQuery(request)
        if len(request.query) <= DIGEST_ON_LOOP:  # a known bound: no thread hop
            known, bound = self._bounds.get(digest(request.query))
            if known:
                return LaneQuery(request, bound)
        return await TRANSLATORS.run(request.query, self._bound, request)

    def _bound(self, request: TapRequest) -> LaneQuery:
        """(On a translator thread.) :meth:`prepare`'s parse, if not known."""
        key = digest(request.query)
        known, bound = self._bounds.get(key)
        if known:
            return LaneQuery(request, bound)
        try:
            statement: exp.Expr | None = parse_limited(request.query, self.limits)
        except QueryLimitError:
            raise
        except AdqlError:
            statement = None  # the translator says what is wrong with it
        bound = None if statement is None else row_bound(statement)
        self._bounds.put(key, bound)
        if bound is None or bound > self.max_rows:
            statement = None  # not the lane's: nothing to keep
        return LaneQuery(request, bound, statement)

    def accepts(self, prepared: object) -> bool:
        """Whether the job's result is bounded to ``max_rows`` and has no upload.

        ``prepared``: the job's :class:`LaneQuery`, made by the TAP kind's
        prepare hook (:func:`taprunner.web.app.prepare_job`).
        """
        if self.state is None or not isinstance(prepared, LaneQuery):
            return False
        request = prepared.request
        if request.uploads:
            return False
        if request.maxrec <= self.max_rows:
            return True
        return prepared.bound is not None and prepared.bound <= self.max_rows

    async def run(self, ctx: JobContext) -> None:
        """The job, on one of the lane's warm connections.

        ``ctx.prepared``: the job's LaneQuery, as the lane's test got it (its
        parameters are parsed again only without one).
        """
        state = self.state
        assert state is not None
        prepared = ctx.prepared if isinstance(ctx.prepared, LaneQuery) else None
        request = None if prepared is None else prepared.request
        statement = None if prepared is None else prepared.take_statement()
        warm = None
        try:
            warm = self._take_idle() or await self._connect()
            await warm.limit(job_timeout(ctx, self.tap))
            role = await owner_role(warm.conn, ctx.owner)
            try:
                catalog = await state.catalog(role)
            except TapError as exc:  # e.g. ServiceBusy: the pool stayed full
                await write_error_async(ctx, str(exc))
                raise
            await execute(
                ctx,
                warm.conn,
                catalog,
                self.tap,
                statements=warm.statements,
                session=True,
                request=request,
                statement=statement,
                observe=self.observe,
                role=role,
                rows_bound=None if prepared is None else prepared.rows_bound(),
                # No ``database``: a lane query's result is at most
                # ``tap_inline_rows`` rows, which cost less to drop than a
                # cancel's connection to stop.
            )
        except DRIVER_ERRORS as exc:
            if warm is not None:
                warm.conn.terminate()  # broken or not, start afresh next time
                warm = None
            raise await unavailable(ctx, exc) from exc
        except TapError:
            raise  # the query failed; its transaction was rolled back
        except BaseException:
            # Cancelled (ABORT, time limit) or failed mid-query: the query must
            # stop in PostgreSQL, which does not notice a dropped client while it
            # computes. The connection is not reused.
            if warm is not None:
                conn, warm = warm.conn, None
                await self._stop(conn)
            raise
        finally:
            if warm is not None and not warm.conn.is_closed():
                self._idle.append(warm)

    async def _stop(self, conn: asyncpg.Connection) -> None:
        """Stop ``conn``'s query and close it.

        asyncpg has asked PostgreSQL to cancel the query, and a next command
        waits until that is done; under load that request can come too late or
        be lost with the connection. ``pg_cancel_backend`` from a connection of
        its own makes sure, in a task that outlives this job if it must. Waits
        at most ``STOP_WAIT`` seconds, and a second cancellation does not keep
        the connection open.
        """
        pid = conn.get_server_pid()
        settle = asyncio.ensure_future(conn.execute("SELECT 1"))
        stop = asyncio.ensure_future(
            self._cancel_backend(self.database.server_of(conn), pid)
        )
        self._stopping.add(stop)
        stop.add_done_callback(self._stopping.discard)
        try:
            await asyncio.wait([settle], timeout=STOP_WAIT)
        finally:
            settle.cancel()
            conn.terminate()

    async def _cancel_backend(self, server: Database, pid: int) -> None:
        """Cancel backend ``pid``'s query (on ``server``, where the lane's
        connection went) until the backend is gone.

        PostgreSQL drops a cancel that arrives while the backend reads its next
        message (e.g. between Bind and Execute), so one request is not enough;
        the connection is closed by then, and the backend exits once its query
        stops.
        """
        try:
            admin = await server.connect(timeout=30)
            try:
                for _ in range(CANCEL_TRIES):
                    if not await admin.fetchval("SELECT pg_cancel_backend($1)", pid):
                        return  # no such backend (any more)
                    await asyncio.sleep(CANCEL_INTERVAL)
            finally:
                await admin.close()
        except Exception as exc:  # logged: the query may still be running
            log.warning("cannot cancel the query of backend %d: %s", pid, exc)
            return
        log.warning("backend %d still runs the query of a stopped job", pid)

    async def close(self) -> None:
        """Close the idle lane connections (at shutdown; never waits)."""
        idle, self._idle = self._idle, []
        for warm in idle:
            warm.conn.terminate()

    def _take_idle(self) -> _Warm | None:
        """An idle connection that is still open (the database may have closed
        some meanwhile, e.g. on a restart)."""
        while self._idle:
            warm = self._idle.pop()
            if not warm.conn.is_closed():
                return warm
        return None

    async def _connect(self) -> _Warm:
        return _Warm(await lane_connection(self.database))


async def lane_connection(database: Database) -> asyncpg.Connection:
    """A new connection of the lane's to ``database`` (the caller closes it):
    the service's session settings and :data:`SESSION_SETUP`."""
    conn = await database.connect(name="fast lane")
    try:
        await conn.execute(SESSION_SETUP)
    except BaseException:
        conn.terminate()
        raise
    return conn

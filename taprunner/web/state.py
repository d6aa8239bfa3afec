"""What the TAP endpoints share: :class:`TapState` (the sync pool, the catalogue
cache) and its application key :data:`TAP`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import web

from aiouws.config import Settings
from aiouws.storage.database import QUERY_ROLE, Database
from aiouws.storage.outage import unavailable_cause, unavailable_message
from taprunner.errors import ServiceBusy, TapUnavailable
from taprunner.query.job import catalog_as
from taprunner.schema.catalog import Connection, TapCatalog
from taprunner.settings import TapSettings
from taprunner.web.examples import OperatorExamples

__all__ = [
    "ACQUIRE_TIMEOUT",
    "CATALOG_LOAD_TIMEOUT",
    "CATALOG_TTL",
    "TAP",
    "TapState",
    "visible_catalog",
]

CATALOG_TTL = 5.0
#: Seconds a catalogue load may take once it has its pooled connection; then
#: the connection is terminated (a server that stopped answering mid-session,
#: e.g. a hung replica, would otherwise hold every request that needs the
#: catalogue for as long as TCP keeps the session open, i.e. for ever).
CATALOG_LOAD_TIMEOUT = 10.0
_FIRST_SETUP = "SELECT min(applied) FROM uws.schema_migration"
#: Seconds a request waits for a free pooled connection before it gets a 503.
ACQUIRE_TIMEOUT = 5.0


@dataclass
class TapState:
    """What the TAP endpoints share: a pool for sync queries, the catalogue cache."""

    pool: asyncpg.Pool
    settings: Settings
    tap: TapSettings
    up_since: datetime
    geometry: bool = True
    """Whether the database has pg_sphere (else geometry is neither advertised
    nor accepted)."""
    examples: OperatorExamples | None = None
    """The operator's examples (``tap_examples``), read at start; None:
    generated from the published tables."""
    queries: Database | None = None
    """The query role's login (the pool's), for the availability probe's own
    connection; None: derived from ``settings``."""
    _catalogs: dict[str, tuple[TapCatalog, float]] = field(default_factory=dict)
    _loading: dict[str, asyncio.Future[TapCatalog]] = field(default_factory=dict)
    _probe: asyncio.Future[None] | None = None
    _created: datetime | None = None

    @property
    def query_database(self) -> Database:
        """The query role's login (the pool's)."""
        return self.queries or Database.of(self.settings).for_queries()

    @asynccontextmanager
    async def connection(self, *, writable: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection, waiting at most ACQUIRE_TIMEOUT for one;
        ``writable`` (a query with uploads: temporary tables), with catalogue
        replicas, a connection of its own to the primary instead.

        Raises
        ------
        ServiceBusy
            No connection became free in time.
        TapUnavailable
            The database cannot be reached (refused, restarting, pool closed).
        """
        if writable and self.queries is not None and self.queries.replicas:
            async with self._primary() as conn:
                yield conn
            return
        with _connect_errors():
            conn = await self.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def _primary(self) -> AsyncIterator[Connection]:
        """A connection of the query role to the primary, closed after use."""
        assert self.queries is not None
        with _connect_errors():
            conn = await self.queries.writable().connect(timeout=ACQUIRE_TIMEOUT)
        try:
            yield conn
        finally:
            conn.terminate()

    async def probe(self, timeout: float) -> None:
        """Connect as the query role, as the pool does, and run ``SELECT 1``, on a
        connection of its own (every pooled one is busy): one at a time, callers
        meanwhile share the probe in flight, so that a flood of (anonymous)
        availability requests opens one database session, not one each.

        Raises what connecting or the query raised.
        """
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_once(timeout))
        await asyncio.shield(self._probe)

    async def _probe_once(self, timeout: float) -> None:
        conn = await self.query_database.connect(timeout=timeout)
        try:
            await conn.fetchval("SELECT 1", timeout=timeout)
        finally:
            await conn.close()

    async def created(self) -> datetime:
        """When the service was first set up: its database's first migration
        (``uws.schema_migration``), the same at every restart. Read once, with
        the service's login (the query role may not read ``uws``); while it
        cannot be read, the start of this process."""
        if self._created is None:
            try:
                conn = await Database.of(self.settings).connect(timeout=5)
                try:
                    first = await conn.fetchval(_FIRST_SETUP, timeout=5)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, TimeoutError):
                return self.up_since
            self._created = first if isinstance(first, datetime) else self.up_since
        return self._created

    async def catalog(self, role: str = QUERY_ROLE) -> TapCatalog:
        """The tables ``role`` may read (TAP_SCHEMA's rows as that role sees
        them), read again when older than CATALOG_TTL.

        One load per role at a time: the requests that find a load of their
        role in flight share its outcome. A load waits at most ACQUIRE_TIMEOUT
        for a connection and takes at most CATALOG_LOAD_TIMEOUT on it (then its
        connection is terminated, never pooled again); when it fails so, a
        catalogue already loaded is used as it is.

        Raises
        ------
        ServiceBusy, TapUnavailable
            No catalogue was loaded yet and no connection became free in time,
            the database is unavailable, or the load did not finish in time.
        """
        cached = self._catalogs.get(role)
        if cached is not None and time.monotonic() - cached[1] <= CATALOG_TTL:
            return cached[0]
        load = self._loading.get(role)
        if load is None:
            load = asyncio.ensure_future(self._load(role))
            self._loading[role] = load
            load.add_done_callback(lambda done: self._loaded(role, done))
        try:
            return await asyncio.shield(load)
        except (ServiceBusy, TapUnavailable):
            if cached is None:
                raise
            return cached[0]

    async def _load(self, role: str) -> TapCatalog:
        now = time.monotonic()
        async with self.connection() as conn:
            catalog = await _load_within(conn, role, CATALOG_LOAD_TIMEOUT)
        self._catalogs[role] = (catalog, now)
        return catalog

    def _loaded(self, role: str, load: asyncio.Future[TapCatalog]) -> None:
        if self._loading.get(role) is load:
            del self._loading[role]
        if not load.cancelled():
            load.exception()  # retrieved: the waiters may all have gone


async def _load_within(conn: Connection, role: str, seconds: float) -> TapCatalog:
    """:func:`catalog_as` on ``conn``, which is terminated if it takes longer
    than ``seconds``: a server that stopped answering is not waited for, and
    cancelling the query instead would wait for it too (the cancellation and
    the rollback need the server's answer).

    Raises
    ------
    TapUnavailable
        The load did not finish in time.
    """
    gave_up = False

    def give_up() -> None:
        nonlocal gave_up
        gave_up = True
        conn.terminate()

    watchdog = asyncio.get_running_loop().call_later(seconds, give_up)
    try:
        return await catalog_as(conn, role)
    except Exception:
        if not gave_up:
            raise
        raise TapUnavailable(
            f"the table catalogue did not load within {seconds:g} s"
        ) from None
    finally:
        watchdog.cancel()


TAP = web.AppKey("aiouws_tap", TapState)


@contextmanager
def _connect_errors() -> Iterator[None]:
    """Getting a query connection: no free one in time is ServiceBusy, a
    database that cannot be reached TapUnavailable."""
    try:
        yield
    except TimeoutError:
        raise ServiceBusy() from None
    except Exception as exc:
        cause = unavailable_cause(exc, connecting=True)
        if cause is None:
            raise
        raise TapUnavailable(unavailable_message(cause)) from exc


async def visible_catalog(request: web.Request) -> TapCatalog:
    """The published tables as the request's client may see them: what
    /tap/tables, the examples and the query page show (one lookup for all).

    The answer then depends on who asks: it is marked ``Cache-Control:
    private`` (:func:`private_answers`), so that a shared cache in front never
    gives one user's tables (proprietary ones) to another."""
    from taprunner.web.sessionroles import request_role

    request[_PER_CLIENT] = True
    return await request.config_dict[TAP].catalog(request_role(request))


_PER_CLIENT = web.RequestKey("aiouws_tap_per_client", bool)


async def private_answers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: an answer that used :func:`visible_catalog` is
    for its client only."""
    if request.get(_PER_CLIENT):
        response.headers["Cache-Control"] = "private"

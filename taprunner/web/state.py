"""What the TAP endpoints share: :class:`TapState` (the sync pool, the catalogue
cache) and its application key :data:`TAP`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import web

from aiouws.config import Settings
from aiouws.storage.database import Database
from aiouws.storage.outage import unavailable_cause, unavailable_message
from taprunner.errors import ServiceBusy, TapUnavailable
from taprunner.schema.catalog import Connection, TapCatalog
from taprunner.settings import TapSettings
from taprunner.web.examples import OperatorExamples

__all__ = ["ACQUIRE_TIMEOUT", "CATALOG_TTL", "TAP", "TapState", "visible_catalog"]

CATALOG_TTL = 5.0
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
    _catalog: TapCatalog | None = None
    _catalog_time: float = 0.0
    _catalog_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _probe: asyncio.Future[None] | None = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection, waiting at most ACQUIRE_TIMEOUT for one.

        Raises
        ------
        ServiceBusy
            No connection became free in time.
        TapUnavailable
            The database cannot be reached (refused, restarting, pool closed).
        """
        try:
            conn = await self.pool.acquire(timeout=ACQUIRE_TIMEOUT)
        except TimeoutError:
            raise ServiceBusy() from None
        except Exception as exc:
            cause = unavailable_cause(exc, connecting=True)
            if cause is None:
                raise
            raise TapUnavailable(unavailable_message(cause)) from exc
        try:
            yield conn
        finally:
            await self.pool.release(conn)

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
        database = self.queries or Database.of(self.settings).for_queries()
        conn = await database.connect(timeout=timeout)
        try:
            await conn.fetchval("SELECT 1", timeout=timeout)
        finally:
            await conn.close()

    async def catalog(self) -> TapCatalog:
        """The published tables, read again when older than CATALOG_TTL.

        One request reloads at a time; while the pool is exhausted a catalogue
        already loaded is used as it is rather than waiting for a connection.

        Raises
        ------
        ServiceBusy, TapUnavailable
            No catalogue was loaded yet and no connection became free in time
            (or the database is unavailable).
        """
        async with self._catalog_lock:
            now = time.monotonic()
            if self._catalog is not None and now - self._catalog_time <= CATALOG_TTL:
                return self._catalog
            try:
                async with self.connection() as conn:
                    self._catalog = await TapCatalog.load(conn)
            except (ServiceBusy, TapUnavailable):
                if self._catalog is None:
                    raise
                return self._catalog
            self._catalog_time = now
            return self._catalog


TAP = web.AppKey("aiouws_tap", TapState)


async def visible_catalog(request: web.Request) -> TapCatalog:
    """The published tables as the request's client may see them: what
    /tap/tables, the examples and the query page show (one lookup for all)."""
    return await request.config_dict[TAP].catalog()

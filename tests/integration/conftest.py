"""Shared fixtures of the integration tests: a database connection and an HTTP client.

``conn`` is a connection to the test's database, set up as the module's
``db_setup`` fixture says (a ``testkit.DbSetup``; by default nothing is added).
``client`` is aiohttp's test client on the module's ``app``: by default the TAP
service on a 2,000-star demo table with the module's ``app_settings`` (by default
``settings``) and ``app_tap`` (by default TAP's defaults for those settings); a
module that serves something else overrides ``app``.

The TAP_SCHEMA tests share ``things`` (``sci.things`` published, see
tapschemakit.py).

The QueueSupervisor tests share ``listener``, ``dirs``, ``make_supervisor`` and
``supervisor`` (their helpers: supervisorkit.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from supervisorkit import KINDS, Factory
from tapschemakit import publish_things
from testkit import Client, DbSetup, MakeClient

from aiouws.config import Settings
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.metadata import TableMetadata
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app


@pytest.fixture
def db_setup() -> DbSetup:
    """What ``conn`` finds in the database (a module overrides this)."""
    return DbSetup()


@pytest.fixture
async def conn(db_dsn: str, db_setup: DbSetup) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the test's database, after the module's ``db_setup``."""
    connection = await asyncpg.connect(db_dsn)
    try:
        await db_setup.apply(connection)
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def catalog(conn: asyncpg.Connection) -> TapCatalog:
    """The TAP catalogue of ``conn``'s database (as a runner loads it)."""
    return await TapCatalog.load(conn)


@pytest.fixture
async def things(conn: asyncpg.Connection, tmp_path: Path) -> TableMetadata:
    """``sci.things`` published in ``conn``'s TAP_SCHEMA (tapschemakit)."""
    return await publish_things(conn, tmp_path)


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The settings of the default ``app`` (a module overrides this)."""
    return settings


@pytest.fixture
def app_tap(app_settings: Settings) -> TapSettings:
    """The TAP settings of the default ``app`` (a module overrides this)."""
    return TapSettings.for_service(app_settings)


@pytest.fixture
def app(app_settings: Settings, app_tap: TapSettings) -> web.Application:
    """What ``client`` serves: the TAP service on a 2,000-star demo table, unless
    a module overrides this."""
    return create_tap_app(app_settings, app_tap, demo_rows=2000)


@pytest.fixture
async def client(app: web.Application, aiohttp_client: MakeClient) -> Client:
    """aiohttp's test client on the module's ``app``."""
    return await aiohttp_client(app)


# -- the QueueSupervisor tests -------------------------------------------------


@pytest.fixture
async def listener(db_dsn: str) -> AsyncIterator[PhaseListener]:
    lst = PhaseListener(lambda: asyncpg.connect(db_dsn))
    await lst.start()
    yield lst
    await lst.stop()


@pytest.fixture
def dirs(tmp_path: Path) -> JobDirs:
    return JobDirs(tmp_path / "jobs")


@pytest.fixture
async def make_supervisor(
    store: JobStore, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> AsyncIterator[Factory]:
    made: list[QueueSupervisor] = []

    async def make(
        *,
        instance_id: str | None = None,
        grace: float = 0.5,
        slots: int = 2,
        start: bool = True,
    ) -> QueueSupervisor:
        settings = Settings(
            data_dir=tmp_path, jobs_dir=dirs.root, grace=grace, slots_per_kind=slots
        )
        sup = QueueSupervisor(
            store, KINDS, dirs, settings, listener, instance_id=instance_id
        )
        made.append(sup)
        if start:
            await sup.start()
        return sup

    yield make
    for sup in made:
        if sup._started:
            await sup.stop(grace=0)


@pytest.fixture
async def supervisor(make_supervisor: Factory) -> QueueSupervisor:
    return await make_supervisor()

"""Shared fixtures: a real PostgreSQL cluster per session, a fresh database per test.

The cluster is a throwaway ``EmbeddedCluster`` in a temporary directory, unless
``AIOUWS_TEST_DSN`` names an existing server (a superuser DSN to its ``postgres``
database); ``AIOUWS_TEST_PG_BINDIR`` runs the throwaway cluster with the
``initdb``/``pg_ctl``/``postgres`` of that directory instead of the newest
installed server (e.g. a private newer release extracted with ``dpkg -x``, its
pg_sphere extracted into the same root). Each test that asks for ``db_dsn``
gets a new database cloned from a template that already holds pg_sphere
(:func:`taprunner.schema.pgsphere.ensure_pg_sphere`) and the aiouws schema.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from testdb import TEMPLATE_DB, create_database, drop_database, with_db

from aiouws.config import Settings
from aiouws.storage.pgcluster import EmbeddedCluster
from aiouws.storage.store import JobStore


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """Superuser DSN of a running PostgreSQL server (database ``postgres``)."""
    given = os.environ.get("AIOUWS_TEST_DSN")
    if given:
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix="aiouws-test-pg-"))
    os.chmod(root, 0o755)
    port = 20000 + secrets.randbelow(20000)
    bindir = os.environ.get("AIOUWS_TEST_PG_BINDIR")
    if bindir and not (Path(bindir) / "initdb").exists():
        pytest.exit(f"AIOUWS_TEST_PG_BINDIR={bindir} holds no initdb", returncode=4)
    cluster = EmbeddedCluster(
        root,
        port=port,
        fast_unsafe=True,
        database="postgres",
        bindir=Path(bindir) if bindir else None,
    )
    cluster.ensure_running()
    try:
        yield cluster.dsn("postgres")
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A template database with the extensions and the application schema."""
    import asyncio

    async def build() -> None:
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_db(pg_admin_dsn, TEMPLATE_DB))
        try:
            await prepare_template(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    yield with_db(pg_admin_dsn, TEMPLATE_DB)


async def prepare_template(conn: asyncpg.Connection) -> None:
    """Install what every test database needs (extensions, schemas)."""
    from taprunner.schema.pgsphere import ensure_pg_sphere

    sphere = await ensure_pg_sphere(conn)
    if not sphere.geometry:
        raise RuntimeError(f"the tests need pg_sphere: {sphere.problem}")
    try:
        from aiouws.storage.schema import install_schema
    except ImportError:
        return
    await install_schema(conn)


@pytest.fixture
async def db_dsn(pg_admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """DSN of a fresh database for this test, cloned from the template."""
    dsn = await create_database(pg_admin_dsn)
    yield dsn
    await drop_database(pg_admin_dsn, dsn)


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool on the per-test database, set up as the application does."""
    from aiouws.storage.schema import init_connection

    p = await asyncpg.create_pool(db_dsn, min_size=1, max_size=10, init=init_connection)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> JobStore:
    from aiouws.storage.store import JobStore

    return JobStore(pool)


@pytest.fixture(scope="session")
def ivoa_schema() -> Any:
    """An lxml XMLSchema of all IVOA schemas (UWS, VOSI, TAPRegExt, VOTable 1.5)."""
    from ivoa_xsd import load_schema

    return load_schema()


@pytest.fixture(scope="session")
def assert_valid(ivoa_schema: Any) -> Callable[[bytes], Any]:
    """Validate an XML document against the IVOA schemas; return the parsed tree."""
    from lxml import etree

    def check(document: bytes) -> Any:
        tree = etree.fromstring(document)
        if not ivoa_schema.validate(tree):
            raise AssertionError(
                f"invalid document: {ivoa_schema.error_log}\n{document[:2000]!r}"
            )
        return tree

    return check


@pytest.fixture
def settings(db_dsn: str, tmp_path: Path) -> Settings:
    """Settings for an app on the per-test database, jobs under ``tmp_path``."""
    return Settings(
        dsn=db_dsn,
        data_dir=tmp_path,
        jobs_dir=tmp_path / "jobs",
        wait_cap=5.0,
        grace=0.5,
    )

"""pg_sphere on the servers it meets: the extension where PostgreSQL accepts it,
the packaged script without its two refused operators where PostgreSQL ≥ 15.20
refuses it, and TAP without geometry where it is missing."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from pginstall import REFUSING_BINDIRS, refusing_bindir, without_pg_sphere
from testdb import with_db
from testkit import MakeClient

from aiouws.config import Settings
from aiouws.storage.pgcluster import EmbeddedCluster
from taprunner.adql.features import FEATURES_GEO
from taprunner.schema.pgsphere import (
    MARKER,
    REFUSED_COMMUTATOR,
    Sphere,
    ensure_pg_sphere,
    patch_script,
)
from taprunner.web.app import create_tap_app

GEOMETRY = (
    "SELECT spoint(0.1, 0.2) <@ scircle(spoint(0.1, 0.2), 0.01),"
    " healpix_nest(10, spoint(0.1, 0.2))"
)


def _cluster(bindir: Path) -> Iterator[EmbeddedCluster]:
    root = Path(tempfile.mkdtemp(prefix="aiouws-test-pgsphere-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(
        root / "cluster",
        port=20000 + secrets.randbelow(20000),
        fast_unsafe=True,
        database="postgres",
        bindir=bindir,
    )
    cluster.ensure_running()
    try:
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def refusing() -> Iterator[EmbeddedCluster]:
    """A cluster of a PostgreSQL that refuses pg_sphere 1.2.0's script."""
    bindir = refusing_bindir()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL >= 15.20 with pg_sphere found in "
            f"{[d for d in REFUSING_BINDIRS if d]} (README, Tests: how to extract one)"
        )
    yield from _cluster(bindir)


@pytest.fixture(scope="module")
def sphereless() -> Iterator[EmbeddedCluster]:
    """A cluster of a PostgreSQL installation without pg_sphere."""
    root = Path(tempfile.mkdtemp(prefix="aiouws-test-nosphere-"))
    root.chmod(0o755)  # the cluster's user (postgres, when we are root) runs it
    try:
        yield from _cluster(without_pg_sphere(root / "install"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _fresh(cluster: EmbeddedCluster) -> str:
    """A new empty database (from template0) on ``cluster``; its DSN."""
    name = "s_" + secrets.token_hex(6)
    admin = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    return with_db(cluster.dsn("postgres"), name)


@pytest.fixture
async def refusing_db(refusing: EmbeddedCluster) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(await _fresh(refusing))
    yield conn
    await conn.close()


async def test_the_server_really_refuses_the_packaged_script(
    refusing_db: asyncpg.Connection,
) -> None:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await refusing_db.execute("CREATE EXTENSION pg_sphere")
    assert str(refused.value) == REFUSED_COMMUTATOR


async def test_the_script_install_works_once_and_only_once(
    refusing_db: asyncpg.Connection,
) -> None:
    first = await ensure_pg_sphere(refusing_db)
    assert (first.sphere, first.version, first.problem) == (
        Sphere.SCRIPT,
        "1.2.0",
        None,
    )
    again = await ensure_pg_sphere(refusing_db)
    assert again == first
    assert await refusing_db.fetchval(f"SELECT count(*) FROM {MARKER}") == 1
    assert tuple(await refusing_db.fetchrow(GEOMETRY)) == (True, 5010283)
    assert await refusing_db.fetchval("SELECT count(*) FROM pg_extension") == 1


async def test_the_script_install_is_the_package_minus_two_operators(
    refusing_db: asyncpg.Connection,
) -> None:
    await ensure_pg_sphere(refusing_db)
    script = await refusing_db.fetchval(
        "SELECT pg_read_file(setting || '/extension/pg_sphere--1.2.0.sql')"
        " FROM pg_config WHERE name = 'SHAREDIR'"
    )
    declared = script.count("\nCREATE OPERATOR ") - script.count(
        "\nCREATE OPERATOR CLASS "
    )
    operators = await refusing_db.fetch(
        "SELECT oprname, oprleft::regtype::text AS l, oprright::regtype::text AS r"
        " FROM pg_operator WHERE oprnamespace = 'public'::regnamespace"
    )
    assert len(operators) == declared - 2
    at_smoc = {(o["l"], o["r"]) for o in operators if o["oprname"] == "@"}
    assert ("bigint", "smoc") not in at_smoc
    assert ("spoint", "smoc") not in at_smoc
    assert ("spoint", "scircle") in at_smoc  # the other @ operators stay
    assert "\\echo" not in patch_script(script, "$libdir/pg_sphere")


async def test_a_newer_package_than_the_script_install_is_reported(
    refusing_db: asyncpg.Connection,
) -> None:
    await ensure_pg_sphere(refusing_db)
    await refusing_db.execute(f"UPDATE {MARKER} SET version = '1.1.5beta4gavo'")
    status = await ensure_pg_sphere(refusing_db)
    assert (status.sphere, status.version) == (Sphere.SCRIPT, "1.1.5beta4gavo")
    assert status.geometry
    assert status.problem is not None
    assert "the server now has 1.2.0" in status.problem
    assert f"drop table {MARKER}" in status.problem


async def test_concurrent_starts_install_once(refusing: EmbeddedCluster) -> None:
    dsn = await _fresh(refusing)
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        outcomes = await asyncio.gather(*(ensure_pg_sphere(c) for c in conns))
        assert {o.sphere for o in outcomes} == {Sphere.SCRIPT}
        assert await conns[0].fetchval(f"SELECT count(*) FROM {MARKER}") == 1
    finally:
        for conn in conns:
            await conn.close()


def test_an_unknown_script_is_refused() -> None:
    with pytest.raises(ValueError, match="found 0"):
        patch_script("CREATE TYPE spoint;\n", "$libdir/pg_sphere")


async def test_where_the_extension_works_nothing_else_happens(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        status = await ensure_pg_sphere(conn)
        expected = (
            Sphere.SCRIPT
            if await conn.fetchval("SELECT to_regclass($1)", MARKER)
            else Sphere.EXTENSION
        )
        assert status.sphere is expected
        assert tuple(await conn.fetchrow(GEOMETRY)) == (True, 5010283)
    finally:
        await conn.close()


async def test_missing_pg_sphere_is_said_with_its_remedy(
    sphereless: EmbeddedCluster,
) -> None:
    conn = await asyncpg.connect(await _fresh(sphereless))
    try:
        status = await ensure_pg_sphere(conn)
    finally:
        await conn.close()
    assert status.sphere is Sphere.MISSING
    assert not status.geometry
    assert status.problem is not None
    assert status.problem.startswith("not installed on the database server")
    assert "apt-get install postgresql-15-pgsphere" in status.problem


async def test_a_role_that_may_not_create_it_is_told_whom_to_ask(
    pg_admin_dsn: str,
) -> None:
    role, name = "r_" + secrets.token_hex(4), "s_" + secrets.token_hex(6)
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"CREATE DATABASE {name} OWNER {role} TEMPLATE template0")
        # The embedded cluster lets in only its own OS users (peer
        # authentication): the session becomes the role instead of logging in.
        conn = await asyncpg.connect(with_db(pg_admin_dsn, name))
        try:
            await conn.execute(f"SET SESSION AUTHORIZATION {role}")
            status = await ensure_pg_sphere(conn)
        finally:
            await conn.close()
        await admin.execute(f"DROP DATABASE {name}")
        await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()
    assert status.sphere is Sphere.MISSING
    assert status.problem is not None
    assert "may not create it" in status.problem
    assert "a superuser runs CREATE EXTENSION pg_sphere" in status.problem


@pytest.fixture
async def sphereless_app(
    sphereless: EmbeddedCluster, tmp_path: Path
) -> web.Application:
    settings = Settings(
        dsn=await _fresh(sphereless),
        data_dir=tmp_path,
        jobs_dir=tmp_path / "jobs",
        wait_cap=5.0,
        grace=0.5,
    )
    return create_tap_app(settings, demo_rows=100)


async def test_tap_without_pg_sphere_serves_without_geometry(
    sphereless_app: web.Application,
    aiohttp_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="taprunner.web.app"):
        client = await aiohttp_client(sphereless_app)
    assert any(
        "pg_sphere" in r.getMessage() and "apt-get install" in r.getMessage()
        for r in caplog.records
    )
    plain = await client.post(
        "/tap/sync",
        data={
            "QUERY": "SELECT COUNT(*) AS n FROM demo.stars",
            "RESPONSEFORMAT": "csv",
            "LANG": "ADQL",
        },
    )
    assert plain.status == 200
    assert (await plain.text()).split() == ["n", "100"]

    cone = await client.post(
        "/tap/sync",
        data={
            "QUERY": "SELECT id FROM demo.stars WHERE 1 = CONTAINS("
            "POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 10, 1))",
            "RESPONSEFORMAT": "csv",
            "LANG": "ADQL",
        },
    )
    assert cone.status == 400
    body = await cone.text()
    assert "is not available" in body and "lacks pg_sphere" in body

    examples = await (await client.get("/tap/examples")).text()
    assert "Brightest stars" in examples
    assert "CONTAINS" not in examples and "Cone search" not in examples

    home = await (await client.get("/")).text()
    assert "demo.stars WHERE mag &lt; 8" in home and "CONTAINS" not in home

    capabilities = await (await client.get("/tap/capabilities")).text()
    assert FEATURES_GEO not in capabilities
    assert "features-adql-string" in capabilities
    # The UDFs that need pg_sphere are neither advertised nor accepted; the
    # others are both.
    assert "ivo_healpix_index" not in capabilities
    assert "ivo_epoch_prop_pos" not in capabilities
    assert "ESO_INTERSECTION" not in capabilities
    assert "eso_dateadd_sec(" in capabilities
    assert "ivo_epoch_prop(" in capabilities and "ivo_hasword" in capabilities
    healpix = await client.post(
        "/tap/sync",
        data={"QUERY": "SELECT ivo_healpix_index(6, 1, 2)", "LANG": "ADQL"},
    )
    assert healpix.status == 400
    assert "lacks pg_sphere" in await healpix.text()

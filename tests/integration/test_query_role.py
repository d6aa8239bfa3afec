"""User queries log in as the unprivileged query role: a boundary the ADQL
whitelist no longer has to be.

Through the service, every path a user query takes (sync, fast lane, a runner's
asyncpg connection, its ADBC session) reports the query role as current and
session user, not a superuser (a published view shows them); raw SQL on the
sync path's own connection, which the whitelist would never let through, cannot
become a superuser, read the job table or write anything; publish grants,
unpublish revokes; an operator's DSN that may not grant gets the SQL to run.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
from astropy.io.votable import parse
from testdb import with_db
from testkit import Client, MakeClient

from aiouws.cli.problems import StartupError
from aiouws.config import Settings
from aiouws.storage.database import QUERY_ROLE, Database
from aiouws.storage.queryrole import ensure_query_role
from taprunner.query.columnar import APPLICATION_NAME
from taprunner.schema import tapschema
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app
from taprunner.web.state import TAP

REPO_ROOT = Path(__file__).resolve().parents[2]

WHOAMI = """
    CREATE SCHEMA who;
    CREATE VIEW who.ami AS SELECT current_user::text AS cur,
        session_user::text AS sess,
        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su;
"""


@pytest.fixture
def app_tap(app_settings: Settings) -> TapSettings:
    # Fast lane for MAXREC <= 10 only: the other async jobs go to a runner.
    return TapSettings.for_service(app_settings, inline_rows=10, slots=1)


async def _superuser(dsn: str) -> tuple[asyncpg.Connection, str]:
    conn = await asyncpg.connect(dsn)
    name = await conn.fetchval("SELECT current_user")
    return conn, name


async def _async_job(client: Client, fmt: str, maxrec: int) -> bytes:
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT cur, sess, su FROM who.ami",
            "RESPONSEFORMAT": fmt,
            "MAXREC": str(maxrec),
            "PHASE": "RUN",
        },
    )
    job = resp.url.path
    text = await (await client.get(job + "?WAIT=30")).text()
    assert "COMPLETED" in text, text
    return await (await client.get(job + "/results/result")).read()


def _row(document: bytes) -> tuple[str, str, bool]:
    row = parse(io.BytesIO(document)).get_first_table().array[0]
    return str(row["cur"]), str(row["sess"]), bool(row["su"])


async def test_every_query_path_logs_in_as_the_query_role(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    admin, _ = await _superuser(settings.dsn)
    try:
        await admin.execute(WHOAMI)
        await tapschema.publish(admin, "who.ami")
    finally:
        await admin.close()
    expected = (QUERY_ROLE, QUERY_ROLE, False)

    sync = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": "SELECT cur, sess, su FROM who.ami"},
    )
    assert sync.status == 200
    assert _row(await sync.read()) == expected
    assert _row(await _async_job(client, "votable", 5)) == expected  # fast lane
    # A runner: TABLEDATA through asyncpg, BINARY2 of text and booleans through
    # binary COPY on the runner's asyncpg connection (tap_columnar_source).
    assert _row(await _async_job(client, "votable/td", 1000)) == expected
    assert _row(await _async_job(client, "votable/b2", 1000)) == expected

    admin, service_user = await _superuser(settings.dsn)
    try:
        logins = await admin.fetch(
            "SELECT usename, application_name FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
    finally:
        await admin.close()
    users = {r["usename"] for r in logins}
    assert users <= {QUERY_ROLE, service_user}, users
    columnar = {
        r["usename"] for r in logins if r["application_name"] == APPLICATION_NAME
    }
    assert columnar == set()  # binary COPY: no ADBC session (see test_columnar)


#: Raw SQL the ADQL whitelist never lets through, and what the query role gets.
ESCAPES = [
    ("SELECT set_config('role', '{su}', true)", 'permission denied to set role "'),
    ("SET ROLE {su}", 'permission denied to set role "'),
    ("SET SESSION AUTHORIZATION {su}", "permission denied to set session"),
    ("SELECT count(*) FROM uws.job", "permission denied for schema uws"),
    ("SELECT * FROM uws.schema_migration", "permission denied for schema uws"),
    ("CREATE TABLE public.evil (x int)", "permission denied for schema public"),
    ("CREATE ROLE evil SUPERUSER", "superuser"),
    ("COPY (SELECT 1) TO PROGRAM 'true'", "superuser|pg_execute_server_program"),
    ("SELECT pg_read_file('/etc/passwd')", "permission denied for function"),
    ("DELETE FROM demo.stars", "permission denied for table stars"),
    ("SELECT * FROM secret.t", "permission denied for schema secret"),
]


async def test_raw_sql_on_the_query_connection_stays_unprivileged(
    client: Client, settings: Settings
) -> None:
    """The whitelist bypassed: raw SQL on the sync path's own pooled connection."""
    assert settings.dsn is not None
    admin, su = await _superuser(settings.dsn)
    try:
        await admin.execute("CREATE SCHEMA secret; CREATE TABLE secret.t (x int)")
    finally:
        await admin.close()
    state = client.server.app[TAP]  # type: ignore[union-attr]
    async with state.connection() as conn:
        assert not await conn.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = session_user"
        )
        for sql, error in ESCAPES:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=error):
                async with conn.transaction():
                    await conn.execute(sql.format(su=su))
            assert await conn.fetchval("SELECT current_user") == QUERY_ROLE


async def test_before_a_superuser_session_with_set_role_was_no_boundary(
    db_dsn: str,
) -> None:
    """Why the login matters: SET ROLE on a superuser's session is undone by
    set_config, which the login role may not do (the test above)."""
    conn, su = await _superuser(db_dsn)
    try:
        await ensure_query_role(conn)
        async with conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{QUERY_ROLE}"')
            await conn.execute(f"SELECT set_config('role', '{su}', true)")
            assert await conn.fetchval("SELECT current_setting('is_superuser')") == "on"
    finally:
        await conn.close()


async def test_publish_grants_and_unpublish_revokes(db_dsn: str) -> None:
    admin, _ = await _superuser(db_dsn)
    await tapschema.install(admin)
    await admin.execute(
        "CREATE SCHEMA pub; CREATE TABLE pub.t AS SELECT 1 AS x;"
        " CREATE TABLE pub.hidden AS SELECT 2 AS y"
    )
    query = await Database(db_dsn).for_queries().connect()
    try:
        assert await query.fetchval("SELECT session_user") == QUERY_ROLE
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query.fetchval("SELECT x FROM pub.t")
        assert await tapschema.publish(admin, "pub.t") == []
        assert await query.fetchval("SELECT x FROM pub.t") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query.fetchval("SELECT y FROM pub.hidden")  # not published
        assert await query.fetchval("SELECT count(*) FROM tap_schema.tables") > 0
        assert await tapschema.unpublish(admin, "pub.t") == []
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query.fetchval("SELECT x FROM pub.t")
    finally:
        await query.close()
        await admin.close()


async def test_non_superuser_operator_gets_the_missing_sql(db_dsn: str) -> None:
    """``aiouws db init`` with a DSN whose user may not grant: the SQL to run."""
    admin, _ = await _superuser(db_dsn)
    database = urlsplit(db_dsn).path.lstrip("/")
    operator = f"op_{database}"
    try:
        await ensure_query_role(admin)
        await admin.execute(
            f'CREATE ROLE "{operator}" NOLOGIN;'
            f'GRANT CREATE ON DATABASE "{database}" TO "{operator}";'
            f'ALTER SCHEMA uws OWNER TO "{operator}";'
            f'ALTER TABLE uws.schema_migration OWNER TO "{operator}";'
            f'REVOKE TEMPORARY ON DATABASE "{database}" FROM PUBLIC, {QUERY_ROLE}'
        )
        # The operator's session: logged in as the superuser, then the role
        # operator (a startup setting), which is what privileges are checked as.
        dsn = with_db(db_dsn, database) + f"&role={operator}"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "taprunner", "--dsn", dsn, "db", "init"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        )
        _, err = await asyncio.wait_for(process.communicate(), 120)
        stderr = err.decode()
        assert process.returncode == 1, stderr
        assert "Traceback" not in stderr
        assert "an administrator should run" in stderr
        assert f'GRANT TEMPORARY ON DATABASE "{database}" TO "{QUERY_ROLE}";' in stderr
        assert f'GRANT "{QUERY_ROLE}" TO "{operator}";' in stderr
        # An administrator runs the same command: nothing is missing any more.
        assert await ensure_query_role(admin) == []
        assert await admin.fetchval(
            "SELECT has_database_privilege($1, current_database(), 'TEMPORARY')",
            QUERY_ROLE,
        )
    finally:
        await admin.execute(
            f"ALTER SCHEMA uws OWNER TO CURRENT_USER;"
            f"ALTER TABLE uws.schema_migration OWNER TO CURRENT_USER;"
            f'REVOKE ALL ON DATABASE "{database}" FROM "{operator}";'
            f'REVOKE "{QUERY_ROLE}" FROM "{operator}";'
            f'DROP ROLE "{operator}"'
        )
        await admin.close()


async def test_serve_refuses_a_superuser_query_login(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    """``query_dsn`` naming the service's superuser: no start, and why."""
    assert settings.dsn is not None
    app = create_tap_app(replace(settings, query_dsn=settings.dsn))
    with pytest.raises(StartupError, match="no privilege boundary: .* is a superuser"):
        await aiohttp_client(app)

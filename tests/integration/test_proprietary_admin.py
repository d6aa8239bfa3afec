"""Proprietary tables administered: ``aiouws tap grant|revoke`` on the command
line, and a query login that would inherit session roles' privileges."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest
from aclkit import acl_database

from aiouws.storage.database import QUERY_ROLE, Database
from taprunner.schema import access, tapschema
from taprunner.web import sessionroles

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def acl_db(db_dsn: str) -> str:
    team = access.Principal("group", "team")
    await acl_database(db_dsn, team, access.Principal("user", "alice"))
    return db_dsn


async def _cli(dsn: str, *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "taprunner", "--dsn", dsn, "tap", *argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_grant_and_revoke_on_the_command_line(acl_db: str) -> None:
    code, out = await _cli(
        acl_db, "grant", "pub.open", "--group", "team", "--user", "x"
    )
    assert (code, out.strip()) == (0, "granted pub.open")
    admin = await asyncpg.connect(acl_db)
    try:
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'pub.open', 'SELECT')", QUERY_ROLE
        )
        assert await admin.fetchval(
            "SELECT has_table_privilege('aiouws_acl_g_team', 'pub.open', 'SELECT')"
        )
        code, out = await _cli(acl_db, "revoke", "pub.open", "--group", "team")
        assert code == 0, out
        code, out = await _cli(acl_db, "revoke", "pub.open", "--user", "x")
        assert code == 1 and "would make it public" in out and "Traceback" not in out
        code, out = await _cli(acl_db, "revoke", "pub.open")
        assert code == 0, out
        assert await admin.fetchval(
            "SELECT has_table_privilege($1, 'pub.open', 'SELECT')", QUERY_ROLE
        )
    finally:
        await admin.close()
    for argv, message in (
        (("grant", "pub.nosuch", "--group", "team"), "unknown table 'pub.nosuch'"),
        (("grant", "nosuch", "--group", "team"), "unknown schema 'nosuch'"),
        (("grant", "pub.open"), "name at least one --user or --group"),
        (("revoke", "pub.open", "--user", "y"), "has no such grant"),
        # The service's own schemas: restricting TAP_SCHEMA would hide it (and
        # every catalogue) from the query role; uws would give principals the
        # job tables.
        (("grant", "tap_schema", "--group", "team"), "the service's"),
        (("grant", "tap_schema.tables", "--group", "team"), "the service's"),
        (("grant", "uws", "--user", "x"), "the service's"),
        (("grant", "tap_acl.grants", "--user", "x"), "the service's"),
        (("grant", "pg_catalog.pg_class", "--user", "x"), "the service's"),
    ):
        code, out = await _cli(acl_db, *argv)
        assert code == 1 and message in out and "Traceback" not in out, out


async def test_an_inheriting_query_login_is_no_boundary(acl_db: str) -> None:
    """The query login may be a member of session roles only as NOINHERIT:
    else it would read every session role's tables without switching."""
    admin = await asyncpg.connect(acl_db)
    query = await Database(acl_db).for_queries().connect()
    try:
        role = await access.session_role_for(
            admin, "someone", ["team"], ["aiouws_acl_g_team"]
        )
        assert await tapschema.query_role_problems(query) == []
        await admin.execute(f'ALTER ROLE "{QUERY_ROLE}" INHERIT')
        problems = await tapschema.query_role_problems(query)
        assert f"{QUERY_ROLE} inherits the privileges of {role}" in " ".join(problems)
    finally:
        await admin.execute(f'ALTER ROLE "{QUERY_ROLE}" NOINHERIT')
        await query.close()
        await admin.close()


async def test_a_restricted_table_replaced_by_a_load_stays_restricted(
    acl_db: str, tmp_path: Path
) -> None:
    """``tap load --replace`` swaps in a new table: its grants are applied again
    in the same transaction (the query role never gets SELECT on it)."""
    csv = tmp_path / "gold.csv"
    csv.write_text("nugget,hush_ref\nRELOADED,1\nRELOADED,2\n")
    code, out = await _cli(acl_db, "load", "--replace", str(csv), "vault.gold")
    assert code == 0, out
    admin = await asyncpg.connect(acl_db)
    try:
        assert await admin.fetchval("SELECT count(*) FROM vault.gold") == 2
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'vault.gold', 'SELECT')", QUERY_ROLE
        )
        assert await admin.fetchval(
            "SELECT has_table_privilege('aiouws_acl_u_alice', 'vault.gold', 'SELECT')"
        )
    finally:
        await admin.close()


async def test_a_restricted_table_readable_by_public_is_restricted_all_the_same(
    acl_db: str, tmp_path: Path
) -> None:
    """SELECT granted to PUBLIC (by hand, or by default privileges on a table a
    load makes anew) is SELECT for the query role too: a restricted table loses
    it, else every outsider reads it and sees it in TAP_SCHEMA."""
    admin = await asyncpg.connect(acl_db)
    query = await Database(acl_db).for_queries().connect()
    try:
        await admin.execute("GRANT SELECT ON secret.t TO PUBLIC")
        await admin.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA vault GRANT SELECT ON TABLES TO PUBLIC"
        )
        assert await access.enforce(admin) == []
        csv = tmp_path / "gold.csv"
        csv.write_text("nugget,hush_ref\nRELOADED,1\n")
        code, out = await _cli(acl_db, "load", "--replace", str(csv), "vault.gold")
        assert code == 0, out
        for table in ("secret.t", "vault.gold"):
            assert not await admin.fetchval(
                "SELECT has_table_privilege($1, $2, 'SELECT')", QUERY_ROLE, table
            ), table
        published = {
            r[0] for r in await query.fetch("SELECT table_name FROM tap_schema.tables")
        }
        assert "pub.open" in published
        assert not published & {"secret.t", "vault.gold"}
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await query.fetch("SELECT hush FROM secret.t")
        assert await admin.fetchval(
            "SELECT has_table_privilege('aiouws_acl_g_team', 'secret.t', 'SELECT')"
        )
    finally:
        await admin.execute(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA vault"
            " REVOKE SELECT ON TABLES FROM PUBLIC"
        )
        await query.close()
        await admin.close()


async def test_an_owner_who_left_a_group_loses_its_role_for_jobs_too(
    acl_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runners and the fast lane query as the role recorded for the owner
    (tap_acl.session_role): once the owner comes without the group again, the
    record says so, even where this process had seen the owner without it
    before (the remembered role equal to the new one; several web processes)."""
    monkeypatch.setattr(sessionroles, "PRINCIPALS_TTL", 0.2)
    roles = sessionroles.SessionRoles(Database(acl_db))
    admin = await asyncpg.connect(acl_db)
    try:
        assert await roles.role_for("dave", frozenset()) == QUERY_ROLE
        team = await roles.role_for("dave", frozenset({"team"}))
        assert team != QUERY_ROLE
        recorded = "SELECT tap_acl.session_role('dave')"
        assert await admin.fetchval(recorded) == team
        await asyncio.sleep(0.3)  # the remembered roles are due again
        assert await roles.role_for("dave", frozenset()) == QUERY_ROLE
        assert await admin.fetchval(recorded) == QUERY_ROLE
    finally:
        await admin.close()


async def test_a_restricted_table_renamed_and_published_stays_restricted(
    acl_db: str,
) -> None:
    """Grants follow their table through a rename (and a move to another
    schema): publishing it under its new name does not make it public, the
    old name stays restricted, and revoking the new name frees both."""
    admin = await asyncpg.connect(acl_db)
    try:
        await admin.execute("ALTER TABLE secret.t RENAME TO renamed")
        await admin.execute("ALTER TABLE secret.renamed SET SCHEMA pub")
        assert await tapschema.publish(admin, "pub.renamed") == []
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'pub.renamed', 'SELECT')", QUERY_ROLE
        )
        assert await admin.fetchval(
            "SELECT has_table_privilege('aiouws_acl_g_team', 'pub.renamed', 'SELECT')"
        )
        targets = {
            r[0]
            for r in await admin.fetch(
                "SELECT target FROM tap_acl.grants WHERE principal = 'team'"
            )
        }
        assert targets == {"secret.t", "pub.renamed"}
        # A table that takes the old name is restricted as the renamed one was.
        await admin.execute("CREATE TABLE secret.t (id int)")
        assert await tapschema.publish(admin, "secret.t") == []
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'secret.t', 'SELECT')", QUERY_ROLE
        )
        code, out = await _cli(acl_db, "revoke", "pub.renamed")
        assert code == 0, out
        assert await admin.fetchval(
            "SELECT has_table_privilege($1, 'pub.renamed', 'SELECT')", QUERY_ROLE
        )
    finally:
        await admin.close()

"""Proprietary tables: invisible and unreadable to everybody without a grant.

``secret.t`` is granted to the group ``team``, the whole schema ``vault`` to the
user ``alice``. Users come from a trusted proxy (``X-Remote-User``) with their
groups (``X-Remote-Groups``): alice (team), carol (team), bob (no group), and
anonymous requests. bob and anonymous see exactly the public tables on every
endpoint, in every query shape, with the same error message as for a table
that does not exist; carol reads ``secret.t`` but not ``vault``; alice reads
both. PostgreSQL enforces it: raw SQL as the role a session gets (the
translator bypassed) is "permission denied".
"""

from __future__ import annotations

import io
import re
from dataclasses import replace

import asyncpg
import numpy as np
import pytest
from aclkit import GOLD, SECRET, acl_database, status_text, sync, values
from aiohttp import FormData, web
from astropy.io.votable import from_table  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]
from testkit import Client

from aiouws.config import Settings
from aiouws.storage.database import QUERY_ROLE, Database
from taprunner.schema import access
from taprunner.schema.metadata import TapSchemaError
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

ALICE = {"X-Remote-User": "alice", "X-Remote-Groups": "team"}
CAROL = {"X-Remote-User": "carol", "X-Remote-Groups": "team,other"}
BOB = {"X-Remote-User": "bob"}
ANONYMOUS: dict[str, str] = {}
OUTSIDERS = [("bob", BOB), ("anonymous", ANONYMOUS)]


@pytest.fixture
async def acl_db(db_dsn: str) -> str:
    team = access.Principal("group", "team")
    await acl_database(db_dsn, team, access.Principal("user", "alice"))
    return db_dsn


@pytest.fixture
def app_settings(settings: Settings, acl_db: str) -> Settings:
    return replace(settings, auth="header", auth_groups_header="X-Remote-Groups")


@pytest.fixture
def app_tap(app_settings: Settings) -> TapSettings:
    # The fast lane for MAXREC <= 10; larger results go to a runner.
    return TapSettings.for_service(app_settings, inline_rows=10, slots=1)


@pytest.fixture
def app(app_settings: Settings, app_tap: TapSettings) -> web.Application:
    return create_tap_app(app_settings, app_tap)


async def _async(
    client: Client, headers: dict[str, str], adql: str, maxrec: int, fmt: str
) -> tuple[str, bytes]:
    """Phase and result (or error document) of an async job."""
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "QUERY": adql,
            "MAXREC": str(maxrec),
            "RESPONSEFORMAT": fmt,
            "PHASE": "RUN",
        },
        headers=headers,
    )
    job = resp.url.path
    text = await (await client.get(job + "?WAIT=30", headers=headers)).text()
    phase = re.search(r"<uws:phase>(\w+)</uws:phase>", text)
    assert phase is not None, text
    if phase.group(1) == "COMPLETED":
        body = await (await client.get(job + "/results/result", headers=headers)).read()
    else:
        body = await (await client.get(job + "/error", headers=headers)).read()
    return phase.group(1), body


#: Query shapes naming a restricted table (``{T}``) or its column (``{C}``).
SHAPES = [
    "SELECT * FROM {T}",
    "SELECT TOP 5 hush FROM {T}",
    "SELECT o.id FROM pub.open AS o JOIN {T} AS s ON s.open_id = o.id",
    "SELECT o.id FROM pub.open AS o, {T} AS s WHERE s.id = o.id",
    "SELECT id FROM pub.open WHERE id IN (SELECT open_id FROM {T})",
    "SELECT id FROM pub.open WHERE EXISTS (SELECT 1 FROM {T})",
    "SELECT name FROM pub.open UNION SELECT hush FROM {T}",
    "SELECT name FROM pub.open EXCEPT SELECT hush FROM {T}",
    "SELECT name FROM pub.open INTERSECT SELECT hush FROM {T}",
    "SELECT x.hush FROM (SELECT hush FROM {T}) AS x",
    "WITH x AS (SELECT hush FROM {T}) SELECT * FROM x",
    "SELECT COUNT(*) FROM {T}",
]
#: Restricted names and names of no table, spelt alike.
RESTRICTED = {
    "secret.t": "secret.nope",
    "vault.gold": "vault.nope",
    "SECRET.T": "SECRET.NOPE",
    "t": "nope",
    "gold": "nope",
}


def _same_error(restricted: str, missing: str, name: str, ghost: str) -> None:
    """The error for the restricted table is that for a missing one."""

    def masked(text: str, word: str) -> str:
        return re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w.])", "@", text)

    assert masked(restricted, name) == masked(missing, ghost), (restricted, missing)


async def test_outsiders_see_exactly_the_public_tables(client: Client) -> None:
    for who, headers in OUTSIDERS:
        for name, ghost in RESTRICTED.items():
            for shape in SHAPES:
                status, body = await sync(client, headers, shape.format(T=name))
                assert status == 400, (who, shape, name, body[:300])
                assert SECRET.encode() not in body and GOLD.encode() not in body
                status, missing = await sync(client, headers, shape.format(T=ghost))
                assert status == 400
                _same_error(status_text(body), status_text(missing), name, ghost)
        # A restricted column, guessed on a public table: as any unknown column.
        _, body = await sync(client, headers, "SELECT hush FROM pub.open")
        _, other = await sync(client, headers, "SELECT nosuch FROM pub.open")
        _same_error(status_text(body), status_text(other), "hush", "nosuch")
        # The public table itself is there.
        status, body = await sync(client, headers, "SELECT name FROM pub.open")
        assert status == 200 and "public-one" in values(body)


async def test_tap_schema_shows_outsiders_only_public_rows(client: Client) -> None:
    queries = {
        "schemas": "SELECT schema_name FROM tap_schema.schemas",
        "tables": "SELECT table_name, schema_name, description FROM tap_schema.tables",
        "columns": "SELECT table_name, column_name FROM tap_schema.columns",
        "keys": "SELECT key_id, from_table, target_table FROM tap_schema.keys",
        "key_columns": "SELECT key_id, from_column, target_column"
        " FROM tap_schema.key_columns",
        "joined": "SELECT c.column_name FROM tap_schema.columns AS c"
        " JOIN tap_schema.tables AS t ON t.table_name = c.table_name",
    }
    seen: dict[str, dict[str, set[str]]] = {}
    for who, headers in [*OUTSIDERS, ("alice", ALICE), ("carol", CAROL)]:
        seen[who] = {}
        for key, adql in queries.items():
            status, body = await sync(client, headers, adql)
            assert status == 200, (who, key, body[:300])
            seen[who][key] = values(body)
    for who, _ in OUTSIDERS:
        everything = " ".join(v for values in seen[who].values() for v in values)
        for word in ("secret", "vault", "hush", "nugget", "gold", "open_id"):
            assert word not in everything, (who, word)
        assert "pub.open" in seen[who]["tables"]
        assert seen[who] == seen["anonymous"]
    assert {"secret.t", "vault.gold"} <= seen["alice"]["tables"]
    assert "hush" in seen["alice"]["columns"] and "nugget" in seen["alice"]["columns"]
    assert any("secret.t" in k for k in seen["alice"]["keys"])  # t -> open
    assert any("vault.gold" in k for k in seen["alice"]["keys"])  # gold -> t
    assert "secret.t" in seen["carol"]["tables"]
    assert "vault.gold" not in seen["carol"]["tables"]
    # carol sees secret.t's key to pub.open, not vault.gold's key to secret.t.
    assert not any("vault" in k for k in seen["carol"]["keys"])
    assert (
        "secret" in seen["carol"]["schemas"] and "vault" not in seen["carol"]["schemas"]
    )


async def test_members_read_their_tables_on_every_path(client: Client) -> None:
    join = (
        "SELECT s.hush, o.name FROM secret.t AS s"
        " JOIN pub.open AS o ON o.id = s.open_id"
    )
    for headers in (ALICE, CAROL):
        status, body = await sync(client, headers, join)
        assert status == 200, body[:300]
        assert SECRET in values(body) and "public-one" in values(body)
        # The fast lane (MAXREC 5), a runner's asyncpg (TABLEDATA) and ADBC (BINARY2).
        for maxrec, fmt in ((5, "votable"), (1000, "votable/td"), (1000, "votable/b2")):
            phase, result = await _async(client, headers, join, maxrec, fmt)
            assert phase == "COMPLETED", result[:300]
            assert SECRET in values(result)
    status, body = await sync(client, ALICE, "SELECT nugget FROM vault.gold")
    assert status == 200 and GOLD in values(body)
    status, body = await sync(client, CAROL, "SELECT nugget FROM vault.gold")
    assert status == 400 and GOLD.encode() not in body


async def test_outsiders_async_jobs_fail_as_for_a_missing_table(client: Client) -> None:
    for who, headers in OUTSIDERS:
        for maxrec, fmt in ((5, "votable"), (1000, "votable/td"), (1000, "votable/b2")):
            phase, body = await _async(
                client, headers, "SELECT * FROM secret.t", maxrec, fmt
            )
            assert phase == "ERROR", (who, fmt)
            _, missing = await _async(
                client, headers, "SELECT * FROM secret.qzz", maxrec, fmt
            )
            assert SECRET.encode() not in body
            _same_error(
                status_text(body), status_text(missing), "secret.t", "secret.qzz"
            )


def _upload_form(adql: str) -> FormData:
    out = io.BytesIO()
    from_table(Table({"hush": np.array(["mine"]), "id": np.array([7])})).to_xml(out)
    form = FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", adql)
    form.add_field("UPLOAD", "t,param:t")
    form.add_field("t", out.getvalue(), filename="t.vot")
    return form


async def test_an_upload_named_like_the_table_is_only_the_upload(
    client: Client,
) -> None:
    for headers in (BOB, ANONYMOUS, ALICE):
        resp = await client.post(
            "/tap/sync",
            data=_upload_form("SELECT * FROM TAP_UPLOAD.t"),
            headers=headers,
        )
        body = await resp.read()
        assert resp.status == 200, body[:300]
        assert values(body) == {"mine", "7"}
    # bob's join of his upload with the restricted table: unknown table.
    resp = await client.post(
        "/tap/sync",
        data=_upload_form(
            "SELECT s.hush FROM TAP_UPLOAD.t AS u JOIN secret.t AS s ON s.id = u.id"
        ),
        headers=BOB,
    )
    body = await resp.read()
    assert resp.status == 400 and SECRET.encode() not in body
    assert "secret.t" in status_text(body)  # "unknown table", as for any name
    # alice's async upload job in a runner reads her table too.
    form = _upload_form(
        "SELECT u.hush AS mine, s.hush FROM TAP_UPLOAD.t AS u, secret.t AS s"
    )
    form.add_field("PHASE", "RUN")
    resp = await client.post("/tap/async", data=form, headers=ALICE)
    job = resp.url.path
    text = await (await client.get(job + "?WAIT=30", headers=ALICE)).text()
    assert "COMPLETED" in text, text
    result = await (await client.get(job + "/results/result", headers=ALICE)).read()
    assert {"mine", SECRET} <= values(result)


async def test_vosi_tables_examples_and_pages(client: Client) -> None:
    for who, headers in OUTSIDERS:
        for path in (
            "/tap/tables",
            "/tap/tables?detail=min",
            "/tap/examples",
            "/tap",
            "/",
            "/tap/resource",
        ):
            resp = await client.get(path, headers=headers)
            body = await resp.text()
            assert resp.status == 200, (who, path)
            # Who asks decides the answer: no shared cache may keep it.
            assert resp.headers.get("Cache-Control") == "private", (who, path)
            for word in ("secret", "vault", "hush", "nugget"):
                assert word not in body, (who, path, word)
            if path.startswith("/tap/tables"):
                assert "pub.open" in body
        for name in ("secret.t", "vault.gold", "SECRET.T"):
            resp = await client.get(f"/tap/tables/{name}", headers=headers)
            ghost = await client.get("/tap/tables/secret.qzz", headers=headers)
            assert resp.status == ghost.status == 404
            _same_error(await resp.text(), await ghost.text(), name, "secret.qzz")
    tables = await (await client.get("/tap/tables", headers=ALICE)).text()
    assert "secret.t" in tables and "vault.gold" in tables
    one = await client.get("/tap/tables/secret.t", headers=CAROL)
    assert one.status == 200 and "hush" in await one.text()
    assert (await client.get("/tap/tables/vault.gold", headers=CAROL)).status == 404
    examples = await (await client.get("/tap/examples", headers=ALICE)).text()
    assert "secret.t" in examples or "vault.gold" in examples


async def test_a_job_result_stays_its_owners(client: Client) -> None:
    phase, _ = await _async(
        client, ALICE, "SELECT hush FROM secret.t", 1000, "votable/td"
    )
    assert phase == "COMPLETED"
    resp = await client.post(
        "/tap/async",
        data={"QUERY": "SELECT hush FROM secret.t", "LANG": "ADQL", "PHASE": "RUN"},
        headers=ALICE,
    )
    job = resp.url.path
    await client.get(job + "?WAIT=30", headers=ALICE)
    for path in (job, job + "/results/result", job + "/parameters", job + "/error"):
        for headers in (BOB, ANONYMOUS, CAROL):
            other = await client.get(path, headers=headers)
            assert other.status == 403, (path, headers)
            assert SECRET not in await other.text()
    listing = await (await client.get("/tap/async", headers=BOB)).text()
    assert job.rsplit("/", 1)[1] not in listing


async def test_the_database_enforces_it(client: Client, acl_db: str) -> None:
    """The translator bypassed: raw SQL as the role each session gets."""
    for headers in (ALICE, CAROL, BOB):  # the server derives and records roles
        await sync(client, headers, "SELECT 1 AS x FROM pub.open")
    query = await Database(acl_db).for_queries().connect()
    try:
        roles = {
            who: await query.fetchval("SELECT tap_acl.session_role($1)", who)
            for who in ("alice", "carol", "bob", "nobody")
        }
        assert roles["bob"] == roles["nobody"] == QUERY_ROLE
        assert roles["alice"] != roles["carol"]
        assert all(
            r.startswith("aiouws_acl_s_") for r in (roles["alice"], roles["carol"])
        )

        async def read(role: str, table: str) -> object:
            async with query.transaction(readonly=True):
                await query.execute(f'SET LOCAL ROLE "{role}"')
                return await query.fetchval(f"SELECT count(*) FROM {table}")

        for table in ("secret.t", "vault.gold"):
            # bob's (and anonymous) role, and the login itself: a member of the
            # session roles, but NOINHERIT.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await read(QUERY_ROLE, table)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await query.fetchval(f"SELECT count(*) FROM {table}")
        assert await read(roles["carol"], "secret.t") == 2
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await read(roles["carol"], "vault.gold")
        assert await read(roles["alice"], "vault.gold") == 1
        assert await read(roles["alice"], "pub.open") == 2  # and the public ones
        # TAP_SCHEMA's rows follow the privileges, for SQL too.
        async with query.transaction(readonly=True):
            names = {
                r[0]
                for r in await query.fetch("SELECT table_name FROM tap_schema.tables")
            }
        assert "pub.open" in names and not {"secret.t", "vault.gold"} & names
    finally:
        await query.close()
    # Revoking takes the privilege away at once.
    admin = await asyncpg.connect(acl_db)
    team = access.Principal("group", "team")
    try:
        await access.grant(admin, "secret.t", [access.Principal("user", "alice")])
        await access.revoke(admin, "secret.t", [team])
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'secret.t', 'SELECT')", roles["carol"]
        )
        assert await admin.fetchval(
            "SELECT has_table_privilege($1, 'secret.t', 'SELECT')",
            await admin.fetchval("SELECT tap_acl.session_role('alice')"),
        )
        # Revoking the last grant by name would make it public: refused.
        with pytest.raises(TapSchemaError, match="public"):
            await access.revoke(admin, "secret.t", [access.Principal("user", "alice")])
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'secret.t', 'SELECT')", QUERY_ROLE
        )
        # Revoking all grants (none named) does.
        await access.revoke(admin, "secret.t", [])
        assert await admin.fetchval(
            "SELECT has_table_privilege($1, 'secret.t', 'SELECT')", QUERY_ROLE
        )
        assert not await admin.fetchval(
            "SELECT has_table_privilege($1, 'vault.gold', 'SELECT')", QUERY_ROLE
        )
    finally:
        await admin.close()


async def test_a_table_whose_schema_the_role_may_not_use_is_only_hidden(
    client: Client, acl_db: str
) -> None:
    """A TAP_SCHEMA row naming a table in a schema the query role has no USAGE
    on (the schema dropped and made again without publishing, or a GRANT USAGE
    an administrator has not run yet) hides that table: it does not make
    TAP_SCHEMA, hence every catalogue, fail with "permission denied for
    schema"."""
    admin = await asyncpg.connect(acl_db)
    try:
        await admin.execute(
            "DROP SCHEMA vault CASCADE; CREATE SCHEMA vault;"
            f" CREATE TABLE vault.gold (nugget text); INSERT INTO vault.gold"
            f" VALUES ('{GOLD}')"
        )
    finally:
        await admin.close()
    for headers in (BOB, ANONYMOUS, CAROL):
        resp = await client.get("/tap/tables", headers=headers)
        body = await resp.text()
        assert resp.status == 200 and "pub.open" in body, body[:300]
        assert "vault" not in body
        status, body = await sync(client, headers, "SELECT name FROM pub.open")
        assert status == 200 and "public-one" in values(body)
        status, body = await sync(
            client, headers, "SELECT table_name FROM tap_schema.tables"
        )
        assert status == 200 and "vault.gold" not in values(body)

"""TAP_SCHEMA on a real PostgreSQL: install, publish (metadata files too), unpublish.

What runners read from it (query role, catalogue) is in test_tapschema_catalog.py,
the demo table in test_demo_table.py.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from tapschemakit import columns_of

from aiouws.storage.queryrole import SESSION_ROLE_PREFIX
from taprunner.schema import tapschema
from taprunner.schema.catalog import load_tables
from taprunner.schema.metadata import (
    TableMetadata,
    TapSchemaError,
    load_metadata,
    parse_metadata,
)

# ------------------------------------------------------------------ install


async def test_install_is_idempotent_and_self_describing(
    conn: asyncpg.Connection,
) -> None:
    await tapschema.install(conn)
    await tapschema.install(conn)
    tables = await conn.fetch(
        "SELECT table_name FROM tap_schema.tables ORDER BY table_index"
    )
    assert [r["table_name"] for r in tables] == [
        "tap_schema.schemas",
        "tap_schema.tables",
        "tap_schema.columns",
        "tap_schema.keys",
        "tap_schema.key_columns",
    ]
    # Every column of every TAP_SCHEMA table is described, and nothing else.
    actual = await conn.fetch(
        "SELECT table_schema || '.' || table_name AS t, column_name AS c"
        " FROM information_schema.columns WHERE table_schema = 'tap_schema'"
    )
    described = await conn.fetch(
        "SELECT table_name AS t, column_name AS c FROM tap_schema.columns"
    )
    # TAP 1.1: the reserved word size is published delimited, as "size".
    assert {tuple(r) for r in actual} == {
        (r["t"], r["c"].strip('"')) for r in described
    }
    assert ("tap_schema.columns", '"size"') in {tuple(r) for r in described}
    assert await conn.fetchval("SELECT count(*) FROM tap_schema.keys") == 5
    assert await conn.fetchval("SELECT to_regnamespace('tap_upload')") is not None
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'tap_upload'"
        )
        == 0
    )


async def test_install_creates_unprivileged_login_query_role(
    conn: asyncpg.Connection,
) -> None:
    assert await tapschema.install(conn) == []  # a superuser may run everything
    role = await conn.fetchrow(
        "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,"
        " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid"
        # Session roles (proprietary tables, cluster-wide: other tests' too)
        # are the only roles it may be a member of, as NOINHERIT.
        " AND NOT starts_with(roleid::regrole::text, $2)) AS member_of,"
        " rolinherit"
        " FROM pg_roles r WHERE rolname = $1",
        tapschema.QUERY_ROLE,
        SESSION_ROLE_PREFIX,
    )
    assert role is not None
    assert tuple(role) == (True, False, False, False, False, 0, False)


# ------------------------------------------------------------------ publish


async def test_publish_fills_tables_and_schemas(
    conn: asyncpg.Connection, things: TableMetadata
) -> None:
    table = await conn.fetchrow(
        "SELECT * FROM tap_schema.tables WHERE table_name = 'sci.things'"
    )
    assert table["schema_name"] == "sci"
    assert table["table_type"] == "table"
    assert table["description"] == "Things observed"
    assert table["utype"] == "ivo://example/things"
    assert table["table_index"] == 3
    schema = await conn.fetchrow(
        "SELECT * FROM tap_schema.schemas WHERE schema_name = 'sci'"
    )
    assert schema["description"] == "Science data"


async def test_publish_maps_datatypes(
    conn: asyncpg.Connection, things: TableMetadata
) -> None:
    columns = await columns_of(conn, "sci.things")
    got = {
        name: (row["datatype"], row["arraysize"], row["xtype"])
        for name, row in columns.items()
    }
    assert got == {
        "id": ("long", None, None),
        "ra": ("double", None, None),
        "small": ("short", None, None),
        "medium": ("int", None, None),
        "flux": ("float", None, None),
        "amount": ("double", None, None),
        "ok": ("boolean", None, None),
        "note": ("unicodeChar", "*", None),
        "code": ("unicodeChar", "8*", None),
        "band": ("unicodeChar", "2", None),
        "seen": ("char", "*", "timestamp"),
        "pos": ("double", "2", "point"),
        '"area"': ("double", "3", "circle"),  # AREA is reserved: delimited
        "outline": ("double", "*", "polygon"),
        "samples": ("double", "*", None),
        "span": ("unicodeChar", "*", None),
    }
    assert columns["band"]["size"] == 2
    assert columns["note"]["size"] is None
    assert [columns[n]["column_index"] for n in ("id", "ra", "span")] == [1, 2, 16]


async def test_publish_metadata_and_flags(
    conn: asyncpg.Connection, things: TableMetadata
) -> None:
    columns = await columns_of(conn, "sci.things")
    ra, note, medium = columns["ra"], columns["note"], columns["medium"]
    assert (ra["unit"], ra["ucd"], ra["description"]) == (
        "deg",
        "pos.eq.ra;meta.main",
        "Right ascension",
    )
    assert (note["principal"], note["std"]) == (0, 1)
    assert (medium["principal"], medium["std"], medium["unit"]) == (1, 0, None)
    assert columns["id"]["indexed"] == 1
    assert ra["indexed"] == 1
    assert medium["indexed"] == 0


async def test_republish_replaces_rows(
    conn: asyncpg.Connection, things: TableMetadata
) -> None:
    await conn.execute("ALTER TABLE sci.things DROP COLUMN span")
    await tapschema.publish(conn, "sci.things")
    columns = await columns_of(conn, "sci.things")
    assert "span" not in columns
    assert columns["ra"]["unit"] is None
    assert (
        await conn.fetchval(
            "SELECT description FROM tap_schema.tables WHERE table_name = 'sci.things'"
        )
        is None
    )


async def test_publish_foreign_keys(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    await conn.execute(
        "CREATE TABLE public.parent (id int PRIMARY KEY);"
        "CREATE TABLE public.child (pid int CONSTRAINT child_parent"
        " REFERENCES public.parent (id))"
    )
    await tapschema.publish(conn, "public.child")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM tap_schema.keys WHERE from_table = 'public.child'"
        )
        == 0
    )
    await tapschema.publish(conn, "public.parent")
    key = await conn.fetchrow(
        "SELECT * FROM tap_schema.keys k JOIN tap_schema.key_columns USING (key_id)"
        " WHERE from_table = 'public.child'"
    )
    assert key["key_id"] == "public.child.child_parent"
    assert key["target_table"] == "public.parent"
    assert (key["from_column"], key["target_column"]) == ("pid", "id")
    # Re-publishing the target keeps the key.
    await tapschema.publish(conn, "public.parent")
    tables = await load_tables(conn)
    (child,) = [t for t in tables if t.name == "public.child"]
    assert [k.columns for k in child.foreign_keys] == [(("pid", "id"),)]


async def test_publish_view(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    await conn.execute("CREATE VIEW public.numbers AS SELECT 1::bigint AS n")
    await tapschema.publish(conn, "public.numbers")
    assert (
        await conn.fetchval(
            "SELECT table_type FROM tap_schema.tables"
            " WHERE table_name = 'public.numbers'"
        )
        == "view"
    )


async def test_publish_unknown_table(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    with pytest.raises(TapSchemaError, match="unknown table 'sci.nothing'"):
        await tapschema.publish(conn, "sci.nothing")
    with pytest.raises(TapSchemaError, match="qualified"):
        await tapschema.publish(conn, "nothing")


async def test_publish_unknown_metadata_column(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    await conn.execute("CREATE TABLE public.small (a int)")
    metadata = parse_metadata({"columns": {"b": {"unit": "m"}}})
    with pytest.raises(TapSchemaError, match="columns.b: public.small has no such"):
        await tapschema.publish(conn, "public.small", metadata)
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM tap_schema.tables WHERE table_name = 'public.small'"
        )
        == 0
    )


async def test_publish_requires_install(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TABLE public.small (a int)")
    with pytest.raises(TapSchemaError, match="install"):
        await tapschema.publish(conn, "public.small")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"description": 3}, "description: must be a string, not an integer"),
        ({"table_index": "1"}, "table_index: must be an integer, not a string"),
        (
            {"columns": {"a": {"principal": "yes"}}},
            "columns.a.principal: must be a boolean, not a string",
        ),
        ({"columns": {"a": {"size": 3}}}, "columns.a.size: unknown key"),
    ],
)
def test_parse_metadata_rejects_bad_input(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(TapSchemaError, match=message):
        parse_metadata(data)


def test_load_metadata_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("description = ")
    with pytest.raises(TapSchemaError, match="not valid TOML"):
        load_metadata(path)
    with pytest.raises(TapSchemaError, match="cannot read"):
        load_metadata(tmp_path / "missing.toml")


# ---------------------------------------------------------------- unpublish


async def test_unpublish(conn: asyncpg.Connection, things: TableMetadata) -> None:
    await tapschema.unpublish(conn, "sci.things")
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM tap_schema.columns WHERE table_name = 'sci.things'"
        )
        == 0
    )
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM tap_schema.schemas WHERE schema_name = 'sci'"
        )
        == 0
    )
    assert not await conn.fetchval(
        "SELECT has_table_privilege($1, 'sci.things', 'SELECT')",
        tapschema.QUERY_ROLE,
    )
    with pytest.raises(TapSchemaError, match="not published"):
        await tapschema.unpublish(conn, "sci.things")

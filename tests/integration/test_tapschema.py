"""TAP_SCHEMA on a real PostgreSQL: install, publish, unpublish, query role, demo."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from taprunner.schema import tapschema
from taprunner.schema.demo import load_demo
from taprunner.schema.tapschema import TapCatalog, TapSchemaError

METADATA_TOML = """
description = "Things observed"
utype = "ivo://example/things"
schema_description = "Science data"
table_index = 3

[columns.ra]
description = "Right ascension"
unit = "deg"
ucd = "pos.eq.ra;meta.main"

[columns.note]
description = "Free text"
principal = false
std = true
"""

TYPES_TABLE = """
CREATE SCHEMA sci;
CREATE TABLE sci.things (
    id bigint PRIMARY KEY,
    ra double precision,
    small smallint,
    medium integer,
    flux real,
    amount numeric,
    ok boolean,
    note text,
    code varchar(8),
    band char(2),
    seen timestamptz,
    pos spoint,
    area scircle,
    outline spoly,
    samples double precision[],
    span interval
);
CREATE INDEX things_ra_idx ON sci.things (ra);
CREATE TABLE sci.secret (x integer);
"""


@pytest.fixture
async def things(conn: asyncpg.Connection, tmp_path: Path) -> tapschema.TableMetadata:
    await tapschema.install(conn)
    await conn.execute(TYPES_TABLE)
    path = tmp_path / "things.toml"
    path.write_text(METADATA_TOML)
    metadata = tapschema.load_metadata(path)
    await tapschema.publish(conn, "sci.things", metadata)
    return metadata


async def columns_of(conn: asyncpg.Connection, table: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM tap_schema.columns WHERE table_name = $1", table
    )
    return {row["column_name"]: row for row in rows}


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


async def test_install_creates_nologin_query_role(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    role = await conn.fetchrow(
        "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1",
        tapschema.QUERY_ROLE,
    )
    assert role is not None
    assert not role["rolcanlogin"] and not role["rolsuper"]


# ------------------------------------------------------------------ publish


async def test_publish_fills_tables_and_schemas(
    conn: asyncpg.Connection, things: tapschema.TableMetadata
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
    conn: asyncpg.Connection, things: tapschema.TableMetadata
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
        "area": ("double", "3", "circle"),
        "outline": ("double", "*", "polygon"),
        "samples": ("double", "*", None),
        "span": ("unicodeChar", "*", None),
    }
    assert columns["band"]["size"] == 2
    assert columns["note"]["size"] is None
    assert [columns[n]["column_index"] for n in ("id", "ra", "span")] == [1, 2, 16]


async def test_publish_metadata_and_flags(
    conn: asyncpg.Connection, things: tapschema.TableMetadata
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
    conn: asyncpg.Connection, things: tapschema.TableMetadata
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
    tables = await tapschema.load_tables(conn)
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
    metadata = tapschema.parse_metadata({"columns": {"b": {"unit": "m"}}})
    with pytest.raises(TapSchemaError, match="unknown columns: b"):
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
        ({"colour": "red"}, "unknown keys colour"),
        ({"description": 3}, "'description' must be a string"),
        ({"table_index": "1"}, "'table_index' must be an integer"),
        ({"columns": {"a": {"principal": "yes"}}}, "'principal' must be a boolean"),
        ({"columns": {"a": {"size": 3}}}, "unknown keys size"),
    ],
)
def test_parse_metadata_rejects_bad_input(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(TapSchemaError, match=message):
        tapschema.parse_metadata(data)


def test_load_metadata_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("description = ")
    with pytest.raises(TapSchemaError, match="cannot read"):
        tapschema.load_metadata(path)
    with pytest.raises(TapSchemaError, match="cannot read"):
        tapschema.load_metadata(tmp_path / "missing.toml")


# ---------------------------------------------------------------- unpublish


async def test_unpublish(
    conn: asyncpg.Connection, things: tapschema.TableMetadata
) -> None:
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


# --------------------------------------------------------------- query role


async def test_query_role_reads_only_published_tables(
    conn: asyncpg.Connection, things: tapschema.TableMetadata
) -> None:
    await conn.execute("INSERT INTO sci.things (id, ra) VALUES (1, 10.0)")
    await conn.execute(f"SET ROLE {tapschema.QUERY_ROLE}")
    try:
        assert await conn.fetchval("SELECT ra FROM sci.things") == 10.0
        assert await conn.fetchval("SELECT count(*) FROM TAP_SCHEMA.tables") >= 6
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("INSERT INTO sci.things (id) VALUES (2)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM tap_schema.columns")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM sci.secret")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE sci.mine (a int)")
    finally:
        await conn.execute("RESET ROLE")


# -------------------------------------------------------- load_tables/catalog


async def test_load_tables_and_catalog(
    conn: asyncpg.Connection, things: tapschema.TableMetadata
) -> None:
    tables = await tapschema.load_tables(conn)
    names = [t.name for t in tables]
    assert names[-5:] == [
        "tap_schema.schemas",
        "tap_schema.tables",
        "tap_schema.columns",
        "tap_schema.keys",
        "tap_schema.key_columns",
    ]
    (sci,) = [t for t in tables if t.name == "sci.things"]
    assert sci.schema == "sci"
    assert sci.description == "Things observed"
    assert sci.columns[0].name == "id"
    catalog = await TapCatalog.load(conn)
    assert catalog.columns_of("sci.things") == tuple(c.name for c in sci.columns)
    assert catalog.columns_of("things") == catalog.columns_of("sci.things")
    assert catalog.columns_of("tap_schema.tables") is not None
    assert catalog.columns_of("sci.nothing") is None
    ra = catalog.column_info("sci.things", "ra")
    assert ra is not None and ra.unit == "deg" and ra.indexed
    assert catalog.column_info("things", "pos") == tapschema.ColumnInfo(
        name="pos", datatype="double", arraysize="2", xtype="point", principal=True
    )
    assert catalog.column_info("sci.things", "nope") is None
    assert catalog.column_info("nothing", "ra") is None


def test_catalog_ambiguous_unqualified_name() -> None:
    def table(schema: str) -> tapschema.TableInfo:
        column = tapschema.ColumnInfo(name="a", datatype="int")
        return tapschema.TableInfo(
            schema=schema,
            name=f"{schema}.t",
            description=None,
            type="table",
            columns=(column,),
        )

    catalog = TapCatalog((table("one"), table("two")))
    assert catalog.columns_of("t") is None
    assert catalog.columns_of("one.t") == ("a",)
    assert catalog.column_info("TWO.T", "A") is not None


async def test_delimited_identifiers(conn: asyncpg.Connection) -> None:
    await tapschema.install(conn)
    await conn.execute('CREATE TABLE public."Odd" ("Mixed Case" int, plain int)')
    await tapschema.publish(conn, "public.Odd")
    columns = await columns_of(conn, 'public."Odd"')
    assert set(columns) == {'"Mixed Case"', "plain"}
    catalog = await TapCatalog.load(conn)
    # Delimited table names match exactly, regular ones fold to lowercase.
    assert catalog.columns_of('public."Odd"') == ("Mixed Case", "plain")
    assert catalog.columns_of('PUBLIC."Odd"') == ("Mixed Case", "plain")
    assert catalog.columns_of("public.odd") is None
    assert catalog.columns_of('public."ODD"') is None
    assert catalog.sql_name('"Odd"') == 'public."Odd"'
    assert catalog.column_info('"Odd"', "mixed case") is not None
    assert tapschema.database_name('"a""b"."C.d"') == 'a"b.C.d'


# --------------------------------------------------------------------- demo


async def test_load_demo(conn: asyncpg.Connection) -> None:
    await load_demo(conn, rows=1000)
    assert await conn.fetchval("SELECT count(*) FROM demo.stars") == 1000
    stats = await conn.fetchrow(
        "SELECT min(ra) >= 0 AND max(ra) < 360 AS ra_ok,"
        " min(dec) >= -90 AND max(dec) <= 90 AS dec_ok,"
        " count(DISTINCT name) AS names, avg(sin(radians(dec))) AS mean_sin"
        " FROM demo.stars"
    )
    assert stats["ra_ok"] and stats["dec_ok"] and stats["names"] == 1000
    assert abs(stats["mean_sin"]) < 0.1
    indexdef = await conn.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'demo'"
        " AND indexdef LIKE '%gist%'"
    )
    assert "spoint(radians(ra), radians(dec))" in indexdef.replace('"', "")
    columns = await columns_of(conn, "demo.stars")
    assert {n: (r["unit"], r["ucd"]) for n, r in columns.items()} == {
        "id": (None, "meta.id;meta.main"),
        "ra": ("deg", "pos.eq.ra;meta.main"),
        "dec": ("deg", "pos.eq.dec;meta.main"),
        "mag": ("mag", "phot.mag"),
        "name": (None, "meta.id"),
    }
    assert columns["ra"]["indexed"] == columns["dec"]["indexed"] == 1
    assert columns["id"]["datatype"] == "long"


async def test_load_demo_is_deterministic_and_idempotent(
    conn: asyncpg.Connection,
) -> None:
    await load_demo(conn, rows=500)
    first = await conn.fetch("SELECT * FROM demo.stars ORDER BY id LIMIT 5")
    oid = await conn.fetchval("SELECT 'demo.stars'::regclass::oid")
    await load_demo(conn, rows=500)
    assert await conn.fetchval("SELECT 'demo.stars'::regclass::oid") == oid
    await load_demo(conn, rows=300)
    assert await conn.fetchval("SELECT count(*) FROM demo.stars") == 300
    await load_demo(conn, rows=500)
    again = await conn.fetch("SELECT * FROM demo.stars ORDER BY id LIMIT 5")
    assert [tuple(r) for r in again] == [tuple(r) for r in first]


async def test_demo_cone_query_uses_index(conn: asyncpg.Connection) -> None:
    await load_demo(conn, rows=20_000)
    await conn.execute(f"SET ROLE {tapschema.QUERY_ROLE}")
    try:
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN SELECT id FROM demo.stars"
                " WHERE spoint(radians(ra), radians(dec))"
                " @ scircle(spoint(radians(180.0), 0.0), radians(0.5))"
            )
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM demo.stars WHERE spoint(radians(ra), radians(dec))"
            " @ scircle(spoint(radians(180.0), 0.0), radians(5.0))"
        )
    finally:
        await conn.execute("RESET ROLE")
    assert "stars_pos_idx" in plan
    assert 0 < count < 20_000


async def test_default_examples_run_on_demo(conn: asyncpg.Connection) -> None:
    from taprunner.adql.translate import translate
    from taprunner.web.vosi import DEFAULT_EXAMPLES

    await load_demo(conn, rows=5_000)
    catalog = await TapCatalog.load(conn)
    await conn.execute(f"SET ROLE {tapschema.QUERY_ROLE}")
    try:
        counts = [
            len(await conn.fetch(translate(query, catalog).sql))
            for _, _, query in DEFAULT_EXAMPLES
        ]
    finally:
        await conn.execute("RESET ROLE")
    # Cones of 0.5 and 1 degree may be empty with 5000 stars; the rest are not.
    assert all(counts[2:]), counts

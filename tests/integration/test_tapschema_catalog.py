"""What runners get from TAP_SCHEMA: the query role's rights, the tables, TapCatalog."""

from __future__ import annotations

import asyncpg
import pytest
from tapschemakit import columns_of

from taprunner.schema import tapschema
from taprunner.schema.catalog import (
    ColumnInfo,
    TableInfo,
    TapCatalog,
    database_name,
    load_tables,
)
from taprunner.schema.metadata import TableMetadata

# --------------------------------------------------------------- query role


async def test_query_role_reads_only_published_tables(
    conn: asyncpg.Connection, things: TableMetadata
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
    conn: asyncpg.Connection, things: TableMetadata
) -> None:
    tables = await load_tables(conn)
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
    assert catalog.columns_of("sci.things") == tuple(
        database_name(c.name)
        for c in sci.columns  # "area" is delimited
    )
    assert catalog.columns_of("things") == catalog.columns_of("sci.things")
    assert catalog.columns_of("tap_schema.tables") is not None
    assert catalog.columns_of("sci.nothing") is None
    ra = catalog.column_info("sci.things", "ra")
    assert ra is not None and ra.unit == "deg" and ra.indexed
    assert catalog.column_info("things", "pos") == ColumnInfo(
        name="pos", datatype="double", arraysize="2", xtype="point", principal=True
    )
    assert catalog.column_info("sci.things", "nope") is None
    assert catalog.column_info("nothing", "ra") is None


def test_catalog_ambiguous_unqualified_name() -> None:
    def table(schema: str) -> TableInfo:
        column = ColumnInfo(name="a", datatype="int")
        return TableInfo(
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
    assert database_name('"a""b"."C.d"') == 'a"b.C.d'


async def test_columns_named_by_adql_reserved_words_are_published_delimited(
    conn: asyncpg.Connection,
) -> None:
    """ADQL refuses a reserved word (DISTANCE, AREA, POINT, MOD, TOP...) as a
    regular identifier, so TAP_SCHEMA must give such a column's name delimited
    (as "size"): a client (TOPCAT, taplint) writes the name it reads there. The
    query built from the published names runs. Before: ``distance``, refused."""
    from taprunner.adql.translate import translate

    await tapschema.install(conn)
    await conn.execute(
        "CREATE TABLE public.survey (id int, distance double precision,"
        ' area double precision, mod int, "top" int, "order" int)'
    )
    await conn.execute("INSERT INTO public.survey VALUES (1, 2.5, 3.5, 4, 5, 6)")
    await tapschema.publish(conn, "public.survey")
    names = list(await columns_of(conn, "public.survey"))
    assert sorted(names) == sorted(
        ["id", '"distance"', '"area"', '"mod"', '"top"', '"order"']
    )
    catalog = await TapCatalog.load(conn)
    adql = f"SELECT {', '.join(names)} FROM public.survey"
    row = await conn.fetchrow(translate(adql, catalog).sql)
    assert row is not None and sorted(row.values()) == [1, 2.5, 3.5, 4, 5, 6]

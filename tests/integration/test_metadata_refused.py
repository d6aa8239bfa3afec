"""Metadata a table refuses, on a real PostgreSQL: columns, foreign keys and
tables it lacks, types its values do not fit; each error names the file, the
key and the problem, and nothing is published. Row counts of views and big
tables."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from metadatakit import CATALOGUE_SQL, tap_schema_rows
from testkit import DbSetup

from taprunner.schema import tapschema
from taprunner.schema.describe import describe_table
from taprunner.schema.metadata import (
    MetadataError,
    SchemaMetadata,
    TableMetadata,
    read_metadata_file,
)


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True, sql=CATALOGUE_SQL)


# ------------------------------------------------------------ refused


@pytest.mark.parametrize(
    "toml, message",
    [
        (
            "[tables.sources.columns.nope]\nunit = 'm'\n",
            "cat.toml: tables.sources.columns.nope: cat.sources has no such column",
        ),
        (
            "[tables.sources.foreign_keys.nope]\ndescription = 'x'\n",
            "cat.toml: tables.sources.foreign_keys.nope: cat.sources has no such"
            " foreign key (it has: sources_field_fk)",
        ),
        (
            "[tables.nope]\n",
            "cat.toml: tables.nope: there is no table cat.nope",
        ),
        (
            "[tables.sources.columns.flags]\narraysize = '2'\n",
            "cat.toml: tables.sources.columns.flags.arraysize: 2 rows of"
            " cat.sources hold arrays that do not fit arraysize 2",
        ),
        (
            "[tables.sources.columns.n]\ndatatype = 'short'\n",
            "cat.toml: tables.sources.columns.n.datatype: 'short' cannot hold the"
            " values of this int4 column (allowed: double, int, long)",
        ),
        (
            "[tables.sources.columns.ra]\narraysize = '2'\n",
            "cat.toml: tables.sources.columns.ra.arraysize: the arraysize of a"
            " float8 column cannot be declared",
        ),
        (
            "[tables.sources.columns.pos]\narraysize = ''\n",
            "cat.toml: tables.sources.columns.pos.arraysize: a float8[] column is"
            " an array",
        ),
        (
            "[tables.sources.columns.seen]\nxtype = 'interval'\n",
            "cat.toml: tables.sources.columns.seen.xtype: a timestamptz column is"
            " published as timestamp; its type is not declared",
        ),
        (
            "[tables.sources.columns.note]\ndatatype = 'int'\n",
            "cat.toml: tables.sources.columns.note.datatype: 'int' cannot hold the"
            " values of this text column (allowed: char, unicodeChar)",
        ),
    ],
)
async def test_metadata_the_tables_refuse(
    conn: asyncpg.Connection, tmp_path: Path, toml: str, message: str
) -> None:
    path = tmp_path / "cat.toml"
    path.write_text(
        "[schema]\ndescription = 'x'\n[tables.fields]\ndescription = 'f'\n" + toml
    )
    metadata = read_metadata_file(path)
    assert isinstance(metadata, SchemaMetadata)
    with pytest.raises(MetadataError) as caught:
        await tapschema.publish_schema(conn, "cat", metadata)
    assert str(caught.value).startswith(str(tmp_path / message)), caught.value
    assert await tap_schema_rows(conn) == {
        "schemas": [],
        "tables": [],
        "columns": [],
        "keys": [],
        "key_columns": [],
    }


NROWS = "SELECT nrows FROM tap_schema.tables WHERE table_name = $1"


async def test_views_have_no_row_count_unless_given(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE VIEW cat.named AS SELECT name FROM cat.fields")
    await tapschema.publish(conn, "cat.named")
    assert await conn.fetchval(NROWS, "cat.named") is None
    await tapschema.publish(conn, "cat.named", TableMetadata(nrows=2))
    assert await conn.fetchval(NROWS, "cat.named") == 2
    assert (await describe_table(conn, "cat.named"))["nrows"] == 2


async def test_big_tables_get_the_planner_estimate(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "CREATE TABLE cat.big AS SELECT g AS x FROM generate_series(1, 1000) g;"
        " ANALYZE cat.big;"
        " UPDATE pg_class SET reltuples = 2.5e6 WHERE oid = 'cat.big'::regclass"
    )
    await tapschema.publish(conn, "cat.big")
    assert await conn.fetchval(NROWS, "cat.big") == 2_500_000


async def test_declaring_what_a_column_has_is_no_error(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    path = tmp_path / "same.toml"
    path.write_text(
        "[columns.seen]\nxtype = 'timestamp'\ndatatype = 'char'\narraysize = '*'\n"
        "[columns.ra]\ndatatype = 'double'\narraysize = ''\nxtype = ''\n"
    )
    metadata = read_metadata_file(path)
    assert isinstance(metadata, TableMetadata)
    await tapschema.publish(conn, "cat.sources", metadata)
    rows = await conn.fetch(
        "SELECT column_name, datatype, arraysize, xtype FROM tap_schema.columns"
        " WHERE table_name = 'cat.sources' AND column_name IN ('seen', 'ra')"
        " ORDER BY column_name"
    )
    assert [tuple(r) for r in rows] == [
        ("ra", "double", None, None),
        ("seen", "char", "*", "timestamp"),
    ]

"""Metadata files on a real PostgreSQL: a schema file published, TAP_SCHEMA and
``/tables`` read back value by value, declared types in the FIELDs of query
results (astropy reads them), ``describe`` round trips, and bad files refused
with the file, the key and the problem, nothing published.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from astropy.io.votable import parse  # type: ignore[import-untyped]
from ivoa_xsd import load_schema
from lxml import etree
from metadatakit import CATALOGUE_SQL, SCHEMA_FILE, tap_schema_rows
from testkit import Client, DbSetup

from aiouws.config import Settings
from taprunner.schema import tapschema
from taprunner.schema.describe import describe_schema, describe_table, to_toml
from taprunner.schema.metadata import (
    SchemaMetadata,
    TableMetadata,
    parse_metadata_file,
    read_metadata_file,
)
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(tap_schema=True, sql=CATALOGUE_SQL)


@pytest.fixture
def app(app_settings: Settings, app_tap: TapSettings) -> web.Application:
    return create_tap_app(app_settings, app_tap, demo_rows=0)


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "cat.toml"
    path.write_text(SCHEMA_FILE)
    return path


@pytest.fixture
async def published(conn: asyncpg.Connection, schema_file: Path) -> SchemaMetadata:
    metadata = read_metadata_file(schema_file)
    assert isinstance(metadata, SchemaMetadata)
    await tapschema.publish_schema(conn, "cat", metadata)
    return metadata


async def _columns(conn: asyncpg.Connection, table: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM tap_schema.columns WHERE table_name = $1", table
    )
    return {r["column_name"]: r for r in rows}


# ------------------------------------------------------------ TAP_SCHEMA


async def test_schema_file_fills_tap_schema(
    conn: asyncpg.Connection, published: SchemaMetadata
) -> None:
    schema = await conn.fetchrow(
        "SELECT * FROM tap_schema.schemas WHERE schema_name = 'cat'"
    )
    assert schema is not None
    assert dict(schema) == {
        "schema_name": "cat",
        "utype": "ivo://example/cat",
        "description": "A small catalogue",
        "schema_index": 5,
    }
    tables = {
        r["table_name"]: dict(r)
        for r in await conn.fetch(
            "SELECT * FROM tap_schema.tables WHERE schema_name = 'cat'"
        )
    }
    assert tables == {
        "cat.sources": {
            "schema_name": "cat",
            "table_name": "cat.sources",
            "table_type": "table",
            "utype": "ivo://example/cat#sources",
            "description": "Detected sources",
            "table_index": 1,
            "nrows": 3,
        },
        "cat.fields": {
            "schema_name": "cat",
            "table_name": "cat.fields",
            "table_type": "table",
            "utype": None,
            "description": "Observed fields",
            "table_index": 2,
            "nrows": 2,
        },
    }
    columns = await _columns(conn, "cat.sources")
    keys = ("datatype", "arraysize", "xtype", "size", "indexed", "principal", "std")
    assert {name: tuple(row[k] for k in keys) for name, row in columns.items()} == {
        "id": ("long", None, None, None, 1, 1, 0),
        "field_id": ("int", None, None, None, 0, 1, 0),
        "ra": ("double", None, None, None, 1, 1, 0),
        "pos": ("double", "2", "point", None, 0, 1, 0),
        "n": ("long", None, None, None, 0, 0, 0),
        "label": ("char", "*", None, None, 0, 1, 1),
        "flags": ("short", "3", None, None, 1, 1, 0),
        "seen": ("char", "*", "timestamp", None, 0, 1, 0),
        "note": ("unicodeChar", "*", None, None, 0, 1, 0),
    }
    assert [columns[c]["column_index"] for c in ("id", "ra", "note")] == [1, 3, 0]
    assert (columns["ra"]["description"], columns["ra"]["unit"]) == (
        "Right ascension",
        "deg",
    )
    assert columns["ra"]["ucd"] == "pos.eq.ra;meta.main"
    assert columns["pos"]["ucd"] == "pos.eq;meta.main"
    assert columns["note"]["utype"] == "ivo://example/cat#note"
    key = await conn.fetchrow(
        "SELECT * FROM tap_schema.keys WHERE from_table = 'cat.sources'"
    )
    assert key is not None
    assert dict(key) == {
        "key_id": "cat.sources.sources_field_fk",
        "from_table": "cat.sources",
        "target_table": "cat.fields",
        "description": "The field each source was detected in",
        "utype": "ivo://example/cat#field",
    }
    pairs = await conn.fetch(
        "SELECT from_column, target_column FROM tap_schema.key_columns"
        " WHERE key_id = 'cat.sources.sources_field_fk'"
    )
    assert [tuple(p) for p in pairs] == [("field_id", "field_id")]


async def test_republishing_the_target_keeps_the_key_description(
    conn: asyncpg.Connection, published: SchemaMetadata
) -> None:
    await tapschema.publish(conn, "cat.fields", published.table("fields"))
    key = "SELECT description FROM tap_schema.keys WHERE from_table = 'cat.sources'"
    assert await conn.fetchval(key) == ("The field each source was detected in")


async def test_tables_document_has_everything_and_is_valid(
    published: SchemaMetadata, client: Client
) -> None:
    body = await (await client.get("/tap/tables")).read()
    root = etree.fromstring(body)
    schema = load_schema()
    assert schema.validate(root), schema.error_log
    ns = {"vs": "http://www.ivoa.net/xml/VODataService/v1.1"}
    (sources,) = root.xpath("//table[name='cat.sources']", namespaces=ns)
    assert sources.findtext("description") == "Detected sources"
    assert sources.findtext("utype") == "ivo://example/cat#sources"
    assert sources.findtext("nrows") == "3"
    names = [c.findtext("name") for c in sources.findall("column")]
    assert names == [
        "note",
        "id",
        "field_id",
        "ra",
        "pos",
        "n",
        "label",
        "flags",
        "seen",
    ]
    (pos,) = sources.xpath("column[name='pos']")
    datatype = pos.find("dataType")
    assert (datatype.text, datatype.get("arraysize"), datatype.get("extendedType")) == (
        "double",
        "2",
        "point",
    )
    (flags,) = sources.xpath("column[name='flags']")
    assert [f.text for f in flags.findall("flag")] == ["indexed", "principal"]
    (n,) = sources.xpath("column[name='n']")
    assert n.findall("flag") == []
    (key,) = sources.findall("foreignKey")
    assert key.findtext("targetTable") == "cat.fields"
    assert key.findtext("description") == "The field each source was detected in"
    minimal = etree.fromstring(
        await (await client.get("/tap/tables?detail=min")).read()
    )
    assert schema.validate(minimal), schema.error_log
    assert minimal.xpath("//table[name='cat.fields']/nrows/text()") == ["2"]
    one = etree.fromstring(await (await client.get("/tap/tables/cat.fields")).read())
    assert schema.validate(one), schema.error_log
    assert one.findtext("nrows") == "2"


# ------------------------------------------------------------ result FIELDs

QUERY = "SELECT id, pos, n, label, flags FROM cat.sources ORDER BY id"


@pytest.mark.parametrize("response_format", ["votable", "votable/td", "votable/b"])
async def test_declared_types_are_the_result_fields(
    published: SchemaMetadata, client: Client, response_format: str
) -> None:
    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": response_format},
    )
    assert response.status == 200, await response.text()
    table = parse(io.BytesIO(await response.read())).get_first_table()
    fields = {f.name: f for f in table.fields}
    assert (fields["pos"].datatype, fields["pos"].arraysize) == ("double", "2")
    assert fields["pos"].xtype == "point"
    assert fields["pos"].ucd == "pos.eq;meta.main"
    assert fields["n"].datatype == "long"
    assert fields["label"].datatype == "char"
    assert (fields["flags"].datatype, fields["flags"].arraysize) == ("short", "3")
    rows = table.array
    assert [list(p) for p in rows["pos"][:2]] == [[10.5, -20.25], [200.0, 45.0]]
    assert bool(rows["pos"].mask[2].all())
    assert list(rows["n"].filled(-1)) == [7, -1, 3]
    assert [str(v) for v in rows["label"][[0, 2]]] == ["abc", "x"]
    assert [list(f) for f in rows["flags"][:2]] == [[1, 2, 3], [4, 5, 6]]


async def test_declared_types_in_parquet(
    published: SchemaMetadata, client: Client, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": QUERY, "RESPONSEFORMAT": "parquet"},
    )
    assert response.status == 200, await response.text()
    path = tmp_path / "r.parquet"
    path.write_bytes(await response.read())
    schema = pq.read_schema(path)
    assert schema.field("pos").type == pa.list_(pa.float64(), 2)
    assert schema.field("n").type == pa.int64()
    assert schema.field("flags").type == pa.list_(pa.int16(), 3)
    header = pq.ParquetFile(path).metadata.metadata[b"IVOA.VOTable-Parquet.content"]
    fields = {f.name: f for f in parse(io.BytesIO(header)).get_first_table().fields}
    assert (fields["pos"].arraysize, fields["pos"].xtype) == ("2", "point")
    rows = pq.read_table(path).to_pylist()
    assert [r["pos"] for r in rows[:2]] == [[10.5, -20.25], [200.0, 45.0]]
    assert all(math.isnan(x) for x in rows[2]["pos"])  # NULL points: NaN
    assert [r["flags"] for r in rows] == [[1, 2, 3], [4, 5, 6], None]


# ------------------------------------------------------------ describe


async def test_describe_schema_round_trips(
    conn: asyncpg.Connection, published: SchemaMetadata, tmp_path: Path
) -> None:
    before = await tap_schema_rows(conn)
    text = to_toml(await describe_schema(conn, "cat"), "a header")
    assert text.startswith("# a header\n")
    # A declared type comes whole; a derived xtype of none is left out.
    assert 'datatype = "double"\narraysize = "2"\nxtype = "point"\n' in text
    assert 'indexed = true\ndatatype = "short"\narraysize = "3"\n\n' in text
    assert 'datatype = "long"\n' in text
    # Derived values stay out: ra's type and index, id's everything.
    assert "[tables.sources.columns.id]\n\n" in text
    path = tmp_path / "described.toml"
    path.write_text(text)
    described = read_metadata_file(path)
    assert isinstance(described, SchemaMetadata)
    assert list(described.tables) == ["sources", "fields"]
    await conn.execute("DELETE FROM tap_schema.schemas WHERE schema_name = 'cat'")
    assert (await tap_schema_rows(conn))["tables"] == []
    await tapschema.publish_schema(conn, "cat", described)
    assert await tap_schema_rows(conn) == before


async def test_describe_table_round_trips(
    conn: asyncpg.Connection, published: SchemaMetadata, tmp_path: Path
) -> None:
    before = await tap_schema_rows(conn)
    document = await describe_table(conn, "cat.sources")
    assert document["schema"] == {
        "description": "A small catalogue",
        "utype": "ivo://example/cat",
        "schema_index": 5,
    }
    described = parse_metadata_file(document, source="described")
    assert isinstance(described, TableMetadata)
    await tapschema.unpublish(conn, "cat.sources")
    await tapschema.publish(conn, "cat.sources", described)
    assert await tap_schema_rows(conn) == before


async def test_describe_an_unpublished_table_gives_a_skeleton(
    conn: asyncpg.Connection,
) -> None:
    document = await describe_table(conn, "cat.fields")
    assert document == {"columns": {"field_id": {}, "name": {}}}
    schema = await describe_schema(conn, "cat")
    assert list(schema["tables"]) == ["fields", "sources"]  # type: ignore[call-overload]

"""The encoders on real PostgreSQL values: BINARY2 (fetch + numpy) and COPY CSV/TSV."""

from __future__ import annotations

import csv
import io
import math

import asyncpg
from astropy.io.votable import parse

from taprunner.formats.fields import FieldSpec, field_for_pg_type
from taprunner.formats.pgcopy import copy_csv
from taprunner.formats.votable import VOTableEncoder

TABLE = """
CREATE TABLE odd (
    id bigint, small smallint, n integer, ra double precision, mag real,
    amount numeric, name text, code varchar(8), flag boolean,
    t timestamp, tz timestamptz, d date, u uuid, blob bytea
);
INSERT INTO odd VALUES
 (9223372036854775807, 32767, 2147483647, 1.5, 2.25, 10.125, 'héllo 😀 ☃', 'ab',
  true, '2021-03-04 05:06:07.5', '2021-03-04 05:06:07.000001+02', '2020-02-29',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (-9223372036854775807, -32768, -2147483648, 'NaN', 'Infinity', -0.5, '', '',
  false, '1999-12-31 23:59:59', '2000-01-01 00:00:00+00', '0001-01-01',
  '00000000-0000-0000-0000-000000000000', '\\x'),
 (42, 0, 0, '-Infinity', -1e-30, 1e20, 'a<b>&"c"' || chr(13) || chr(10) || 'd',
  'x y', NULL, NULL, NULL, NULL, NULL, NULL);
"""
QUERY = "SELECT * FROM odd ORDER BY id NULLS FIRST"


async def _fields(conn: asyncpg.Connection) -> list[FieldSpec]:
    attributes = (await conn.prepare(QUERY)).get_attributes()
    return [field_for_pg_type(a.name, a.type.name) for a in attributes]


async def _generic(conn: asyncpg.Connection, fields: list[FieldSpec]) -> bytes:
    encoder = VOTableEncoder(fields)
    parts = [encoder.header()]
    async with conn.transaction():
        cursor = await conn.cursor(QUERY)
        while rows := await cursor.fetch(3):
            parts.append(encoder.encode(rows))
    return b"".join([*parts, encoder.footer()])


async def test_binary2_of_postgresql_values_round_trips(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(TABLE)
        generic = await _generic(conn, await _fields(conn))
    finally:
        await conn.close()
    table = parse(io.BytesIO(generic)).get_first_table().array
    assert list(table["id"].mask) == [True, False, False, False]
    assert list(table["id"].data[1:]) == [-9223372036854775807, 42, 2**63 - 1]
    assert table["name"].data[3] == "héllo 😀 ☃"
    assert table["name"].data[2] == 'a<b>&"c"\r\nd'
    assert math.isnan(table["ra"].data[1]) and table["ra"].data[3] == 1.5
    assert table["mag"].data[1] == math.inf
    assert table["amount"].data[3] == 10.125
    assert list(table["flag"].data[1:]) == [False, False, True]
    assert list(table["flag"].mask) == [True, False, True, False]
    assert table["t"].data[3] == "2021-03-04T05:06:07.500000"
    assert table["tz"].data[3] == "2021-03-04T03:06:07.000001"
    assert table["tz"].data[1] == "2000-01-01T00:00:00"
    assert table["d"].data[1] == "0001-01-01"
    assert table["u"].data[3] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert [int(b) for b in table["blob"].data[3]] == [0, 255]


async def test_copy_csv_and_tsv(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(TABLE)
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)

        query = "SELECT id, name FROM odd ORDER BY id NULLS FIRST"
        assert await copy_csv(conn, query, sink) == 4
        text = b"".join(chunks).decode()
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == ["id", "name"]
        assert rows[1] == ["", ""] and rows[2] == ["-9223372036854775807", ""]
        assert rows[3] == ["42", 'a<b>&"c"\r\nd'] and rows[4][1] == "héllo 😀 ☃"
        assert '""' in text.splitlines()[2]  # empty string differs from NULL
        chunks.clear()
        assert await copy_csv(conn, query, sink, delimiter="\t") == 4
        lines = b"".join(chunks).decode().splitlines()
        assert lines[0] == "id\tname" and lines[1] == "\t"
        assert lines[3] == '42\ta<b>&"c"\\r\\nd'
    finally:
        await conn.close()

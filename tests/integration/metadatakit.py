"""The catalogue of the metadata file tests: two tables (``cat.sources`` with a
foreign key to ``cat.fields``), the schema file describing them, and a reader of
TAP_SCHEMA's rows to compare publications."""

from __future__ import annotations

import asyncpg

__all__ = ["CATALOGUE_SQL", "SCHEMA_FILE", "tap_schema_rows"]

CATALOGUE_SQL = """
CREATE SCHEMA cat;
CREATE TABLE cat.fields (field_id integer PRIMARY KEY, name text);
CREATE TABLE cat.sources (
    id bigint PRIMARY KEY,
    field_id integer,
    ra double precision,
    pos double precision[],
    n integer,
    label text,
    flags smallint[],
    seen timestamptz,
    note text,
    CONSTRAINT sources_field_fk FOREIGN KEY (field_id)
        REFERENCES cat.fields (field_id)
);
CREATE INDEX sources_ra ON cat.sources (ra);
INSERT INTO cat.fields VALUES (1, 'north'), (2, 'south');
INSERT INTO cat.sources VALUES
    (1, 1, 10.5, '{10.5,-20.25}', 7, 'abc', '{1,2,3}', NULL, 'first'),
    (2, 2, 200, '{200,45}', NULL, NULL, '{4,5,6}', NULL, NULL),
    (3, 1, 0, NULL, 3, 'x', NULL, NULL, 'third');
"""

#: sources before fields: its foreign key's description still arrives.
SCHEMA_FILE = """
[schema]
description = "A small catalogue"
utype = "ivo://example/cat"
schema_index = 5

[tables.sources]
description = "Detected sources"
utype = "ivo://example/cat#sources"
table_index = 1

[tables.sources.columns.ra]
description = "Right ascension"
unit = "deg"
ucd = "pos.eq.ra;meta.main"

[tables.sources.columns.pos]
description = "Position"
unit = "deg"
ucd = "pos.eq;meta.main"
datatype = "double"
arraysize = "2"
xtype = "point"

[tables.sources.columns.n]
datatype = "long"
principal = false

[tables.sources.columns.label]
datatype = "char"
std = true

[tables.sources.columns.flags]
arraysize = "3"
indexed = true

[tables.sources.columns.note]
column_index = 0
utype = "ivo://example/cat#note"

[tables.sources.foreign_keys.sources_field_fk]
description = "The field each source was detected in"
utype = "ivo://example/cat#field"

[tables.fields]
description = "Observed fields"
table_index = 2

[tables.fields.columns.field_id]
description = "Field identifier"
ucd = "meta.id;meta.main"
"""


async def _rows(conn: asyncpg.Connection, table: str) -> list[tuple[object, ...]]:
    """Every row of ``tap_schema.<table>`` but TAP_SCHEMA's own, sorted."""
    rows = await conn.fetch(f"SELECT * FROM tap_schema.{table}")
    found = [tuple(r) for r in rows if "tap_schema" not in str(tuple(r))]
    return sorted(found, key=repr)


async def tap_schema_rows(conn: asyncpg.Connection) -> dict[str, object]:
    tables = ("schemas", "tables", "columns", "keys", "key_columns")
    return {t: await _rows(conn, t) for t in tables}

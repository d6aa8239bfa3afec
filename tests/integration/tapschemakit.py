"""A published table of every column type (``sci.things``) for the TAP_SCHEMA tests.

``publish_things`` installs TAP_SCHEMA, creates ``sci.things`` (and an unpublished
``sci.secret``) and publishes it with metadata read from a TOML file;
``columns_of`` reads a table's rows of ``tap_schema.columns``.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg

from taprunner.schema import tapschema
from taprunner.schema.metadata import TableMetadata, load_metadata

__all__ = ["METADATA_TOML", "TYPES_TABLE", "columns_of", "publish_things"]

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


async def publish_things(conn: asyncpg.Connection, tmp_path: Path) -> TableMetadata:
    """Publish ``sci.things`` with :data:`METADATA_TOML`; the metadata read."""
    await tapschema.install(conn)
    await conn.execute(TYPES_TABLE)
    path = tmp_path / "things.toml"
    path.write_text(METADATA_TOML)
    metadata = load_metadata(path)
    await tapschema.publish(conn, "sci.things", metadata)
    return metadata


async def columns_of(conn: asyncpg.Connection, table: str) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM tap_schema.columns WHERE table_name = $1", table
    )
    return {row["column_name"]: row for row in rows}

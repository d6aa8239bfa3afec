"""Foreign keys in TAP_SCHEMA: those between published tables, with descriptions."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TableMetadata
from taprunner.schema.names import adql_name
from taprunner.schema.names import table_name as _table_name

__all__ = ["key_descriptions", "publish_keys"]

# Foreign keys between a table and other tables, both directions, one row per
# column pair, in constraint column order.
_FOREIGN_KEYS_SQL = """
SELECT c.conname, c.conrelid = $1 AS own,
       fn.nspname AS from_schema, fc.relname AS from_table,
       tn.nspname AS target_schema, tc.relname AS target_table,
       fa.attname AS from_column, ta.attname AS target_column
FROM pg_constraint c
JOIN pg_class fc ON fc.oid = c.conrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
JOIN pg_class tc ON tc.oid = c.confrelid
JOIN pg_namespace tn ON tn.oid = tc.relnamespace
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY
    AS k(from_num, target_num, ord)
JOIN pg_attribute fa ON fa.attrelid = c.conrelid AND fa.attnum = k.from_num
JOIN pg_attribute ta ON ta.attrelid = c.confrelid AND ta.attnum = k.target_num
WHERE c.contype = 'f' AND (c.conrelid = $1 OR c.confrelid = $1)
ORDER BY c.conname, k.ord
"""


async def key_descriptions(
    conn: Connection, table_name: str
) -> dict[str, tuple[str | None, str | None]]:
    """Descriptions and utypes of the published keys to and from a table."""
    rows = await conn.fetch(
        "SELECT key_id, description, utype FROM tap_schema.keys"
        " WHERE from_table = $1 OR target_table = $1",
        table_name,
    )
    return {r["key_id"]: (r["description"], r["utype"]) for r in rows}


async def publish_keys(
    conn: Connection,
    oid: int,
    metadata: TableMetadata,
    kept: Mapping[str, tuple[str | None, str | None]],
) -> None:
    """Publish the foreign keys between this table and other published ones:
    descriptions from ``metadata`` for its own, ``kept`` for the others'."""
    published = {
        r["table_name"]
        for r in await conn.fetch("SELECT table_name FROM tap_schema.tables")
    }
    keys: dict[str, list[asyncpg.Record]] = {}
    for row in await conn.fetch(_FOREIGN_KEYS_SQL, oid):
        from_table = _table_name(row["from_schema"], row["from_table"])
        target_table = _table_name(row["target_schema"], row["target_table"])
        if from_table in published and target_table in published:
            keys.setdefault(f"{from_table}.{row['conname']}", []).append(row)
    for key_id, rows in keys.items():
        first = rows[0]
        if first["own"]:
            own = metadata.foreign_key(first["conname"])
            described, conflict = (own.description, own.utype), _UPDATE_KEY
        else:
            described, conflict = kept.get(key_id, (None, None)), "DO NOTHING"
        await conn.execute(
            "INSERT INTO tap_schema.keys"
            " (key_id, from_table, target_table, description, utype)"
            f" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id) {conflict}",
            key_id,
            _table_name(first["from_schema"], first["from_table"]),
            _table_name(first["target_schema"], first["target_table"]),
            *described,
        )
        await conn.executemany(
            "INSERT INTO tap_schema.key_columns (key_id, from_column, target_column)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [
                (key_id, adql_name(r["from_column"]), adql_name(r["target_column"]))
                for r in rows
            ],
        )


_UPDATE_KEY = "DO UPDATE SET description = EXCLUDED.description, utype = EXCLUDED.utype"

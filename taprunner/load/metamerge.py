"""The metadata a load publishes: the table's earlier publication, overlaid by
the file headers, overlaid by the ``--metadata`` TOML file.

So reloading a catalogue (``--replace``, ``--append``) keeps the descriptions
curated earlier unless the new file or TOML says otherwise; every layer is the
:class:`~taprunner.schema.metadata.TableMetadata` that ``aiouws tap publish``
takes, merged key by key (a key left at its default does not override).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from taprunner.schema import tapschema
from taprunner.schema.catalog import Connection
from taprunner.schema.columns import COLUMNS_SQL, derived_type
from taprunner.schema.metadata import ColumnMetadata, TableMetadata
from taprunner.schema.names import quote

__all__ = ["merge_metadata", "published_metadata"]

_T = TypeVar("_T", TableMetadata, ColumnMetadata)


def merge_metadata(
    base: TableMetadata | None,
    headers: TableMetadata,
    curated: TableMetadata | None,
) -> TableMetadata:
    """``headers`` over ``base``, ``curated`` over both; the columns are those of
    ``headers`` (the loaded table's), in its order."""
    layers = [m for m in (base, headers, curated) if m is not None]
    merged = layers[0]
    for layer in layers[1:]:
        merged = _overlay(merged, layer)
    columns = tuple(_merge_column(layers, column.name) for column in headers.columns)
    return dataclasses.replace(merged, columns=columns)


def _merge_column(layers: list[TableMetadata], name: str) -> ColumnMetadata:
    merged = ColumnMetadata(name=name)
    for layer in layers:
        for column in layer.columns:
            if column.name == name:
                merged = _overlay(merged, column)
    return merged


def _overlay(under: _T, over: _T) -> _T:
    """``under`` with every field ``over`` sets to other than its default."""
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(over):
        if item.name in ("columns", "name"):
            continue
        value = getattr(over, item.name)
        if value != _default(item):
            changes[item.name] = value
    return dataclasses.replace(under, **changes)


def _default(item: dataclasses.Field[Any]) -> object:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


async def published_metadata(
    conn: Connection,
    qualified_table: str,
    columns: Sequence[tuple[str, str]] = (),
) -> TableMetadata | None:
    """What TAP_SCHEMA holds of ``schema.table`` (None: not published).

    Declared (curated) types and column order are kept too: a published
    ``(datatype, arraysize, xtype)`` other than PostgreSQL's own, for a column
    whose PostgreSQL type is the same in ``columns`` (the ``(name, type)`` pairs
    about to be loaded), and a ``column_index`` other than the position.
    """
    schema, _, table = qualified_table.partition(".")
    name = f"{tapschema.adql_name(schema)}.{tapschema.adql_name(table)}"
    declared = await _declared(conn, schema, table, name, dict(columns))
    row = await conn.fetchrow(
        "SELECT t.description, t.utype, t.table_index, s.description AS schema"
        " FROM tap_schema.tables t JOIN tap_schema.schemas s USING (schema_name)"
        " WHERE t.table_name = $1",
        name,
    )
    if row is None:
        return None
    published = await conn.fetch(
        "SELECT column_name, description, unit, ucd, utype, principal, std"
        " FROM tap_schema.columns WHERE table_name = $1",
        name,
    )
    return TableMetadata(
        description=row["description"],
        utype=row["utype"],
        table_index=row["table_index"],
        schema_description=row["schema"],
        columns=tuple(
            dataclasses.replace(
                ColumnMetadata(
                    name=_unquote(c["column_name"]),
                    description=c["description"],
                    unit=c["unit"],
                    ucd=c["ucd"],
                    utype=c["utype"],
                    principal=bool(c["principal"]),
                    std=bool(c["std"]),
                ),
                **declared.get(_unquote(c["column_name"]), {}),
            )
            for c in published
        ),
    )


_DECLARED_SQL = """
SELECT column_name, datatype, arraysize, xtype, column_index
FROM tap_schema.columns WHERE table_name = $1
"""
_PG_TYPES_SQL = """
SELECT attname, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
"""


async def _declared(
    conn: Connection, schema: str, table: str, name: str, new_types: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Per column, the declared values of its publication (see
    :func:`published_metadata`)."""
    relation = f"{quote(schema)}.{quote(table)}"
    oid = await conn.fetchval("SELECT to_regclass($1)::oid", relation)
    if oid is None:
        return {}
    rows = {r["name"]: r for r in await conn.fetch(COLUMNS_SQL, oid)}
    pg_types = {r[0]: r[1] for r in await conn.fetch(_PG_TYPES_SQL, oid)}
    declared: dict[str, dict[str, Any]] = {}
    for p in await conn.fetch(_DECLARED_SQL, name):
        column = _unquote(p["column_name"])
        row = rows.get(column)
        if row is None:
            continue
        values: dict[str, Any] = {}
        if p["column_index"] != row["position"]:
            values["column_index"] = p["column_index"]
        published = (p["datatype"], p["arraysize"], p["xtype"])
        new_type = new_types.get(column, "").replace("timestamp", _TS)
        same_type = new_type == pg_types.get(column)
        if same_type and published != derived_type(row):
            values["datatype"] = p["datatype"]
            values["arraysize"] = p["arraysize"] or ""
            values["xtype"] = p["xtype"] or ""
        declared[column] = values
    return declared


_TS = "timestamp without time zone"


def _unquote(name: str) -> str:
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name

"""The metadata a load publishes: the table's earlier publication, overlaid by
the file headers, overlaid by the ``--metadata`` TOML file.

So reloading a catalogue (``--replace``, ``--append``) keeps the descriptions
curated earlier unless the new file or TOML says otherwise; every layer is the
:class:`~taprunner.schema.metadata.TableMetadata` that ``aiouws tap publish``
takes, merged key by key (a key left at its default does not override).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from taprunner.schema import tapschema
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import ColumnMetadata, TableMetadata

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
    conn: Connection, qualified_table: str
) -> TableMetadata | None:
    """What TAP_SCHEMA holds of ``schema.table`` (None: not published)."""
    schema, _, table = qualified_table.partition(".")
    name = f"{tapschema.adql_name(schema)}.{tapschema.adql_name(table)}"
    row = await conn.fetchrow(
        "SELECT t.description, t.utype, t.table_index, s.description AS schema"
        " FROM tap_schema.tables t JOIN tap_schema.schemas s USING (schema_name)"
        " WHERE t.table_name = $1",
        name,
    )
    if row is None:
        return None
    columns = await conn.fetch(
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
            ColumnMetadata(
                name=_unquote(c["column_name"]),
                description=c["description"],
                unit=c["unit"],
                ucd=c["ucd"],
                utype=c["utype"],
                principal=bool(c["principal"]),
                std=bool(c["std"]),
            )
            for c in columns
        ),
    )


def _unquote(name: str) -> str:
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name

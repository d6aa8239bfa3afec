"""``aiouws tap describe``: the metadata of published tables as a metadata file.

What TAP_SCHEMA holds for a table (or every published table of a schema) is
written in the format :mod:`.metadata` reads, leaving out what publishing
derives anyway (a column's type, ``indexed`` and ``column_index`` appear only
where they were declared otherwise, the type's three keys together;
``principal`` only when false, ``std`` only when true), so that publishing the
output again gives the same TAP_SCHEMA rows.
A table not published yet gives a skeleton: every column, nothing filled in.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
import tomli_w

from taprunner.schema.catalog import Connection, database_name
from taprunner.schema.columns import COLUMNS_SQL, derived_type
from taprunner.schema.metadata import TapSchemaError
from taprunner.schema.names import adql_name, split, table_name

__all__ = ["describe_schema", "describe_table", "to_toml"]

_Table = dict[str, object]


async def describe_table(conn: Connection, qualified_table: str) -> _Table:
    """The table file of ``schema.table``: its keys, ``[schema]``, columns, keys.

    Raises
    ------
    TapSchemaError
        If the name is not qualified or the table does not exist.
    """
    schema, table = split(qualified_table)
    document = await _table(conn, schema, table)
    described = await _schema(conn, schema)
    columns = document.pop("columns")
    keys = document.pop("foreign_keys", None)
    if described:
        document["schema"] = described
    document["columns"] = columns
    if keys:
        document["foreign_keys"] = keys
    return document


async def describe_schema(conn: Connection, schema: str) -> _Table:
    """The schema file of ``schema``: ``[schema]`` and its published tables (all
    its tables if none is published yet).

    Raises
    ------
    TapSchemaError
        If the schema holds no table.
    """
    published = await conn.fetch(
        "SELECT table_name FROM tap_schema.tables WHERE schema_name = $1"
        " ORDER BY table_index NULLS LAST, table_name",
        adql_name(schema),
    )
    names = [database_name(r["table_name"]).split(".", 1)[1] for r in published]
    if not names:
        names = [
            r["relname"]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
                " AND NOT c.relispartition ORDER BY c.relname",
                schema,
            )
        ]
    if not names:
        raise TapSchemaError(f"schema {schema!r} holds no table")
    document: _Table = {}
    described = await _schema(conn, schema)
    if described:
        document["schema"] = described
    document["tables"] = {name: await _table(conn, schema, name) for name in names}
    return document


def to_toml(document: Mapping[str, object], header: str = "") -> str:
    """``document`` as TOML text, after ``header`` (comment lines)."""
    lines = "".join(
        f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines()
    )
    return lines + ("\n" if lines else "") + tomli_w.dumps(document)


async def _schema(conn: Connection, schema: str) -> _Table:
    row = await conn.fetchrow(
        "SELECT description, utype, schema_index FROM tap_schema.schemas"
        " WHERE schema_name = $1",
        adql_name(schema),
    )
    return _present(row, ("description", "utype", "schema_index"))


async def _table(conn: Connection, schema: str, table: str) -> _Table:
    relation = await conn.fetchrow(
        "SELECT c.oid, c.relkind::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2"
        " AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        schema,
        table,
    )
    if relation is None:
        raise TapSchemaError(f"unknown table '{schema}.{table}'")
    name = table_name(schema, table)
    row = await conn.fetchrow(
        "SELECT description, utype, table_index, nrows FROM tap_schema.tables"
        " WHERE table_name = $1",
        name,
    )
    document = _present(row, ("description", "utype", "table_index"))
    if row is not None and row["nrows"] is not None and relation["relkind"] in "vf":
        document["nrows"] = row["nrows"]  # views are not counted: it was given
    published = {
        r["column_name"]: r
        for r in await conn.fetch(
            "SELECT * FROM tap_schema.columns WHERE table_name = $1", name
        )
    }
    columns = await conn.fetch(COLUMNS_SQL, relation["oid"])
    ordered = sorted(
        columns,
        key=lambda r: (_index(published.get(adql_name(r["name"])), r), r["position"]),
    )
    document["columns"] = {
        r["name"]: _column(published.get(adql_name(r["name"])), r) for r in ordered
    }
    keys = await conn.fetch(
        "SELECT key_id, description, utype FROM tap_schema.keys"
        " WHERE from_table = $1 ORDER BY key_id",
        name,
    )
    if keys:
        document["foreign_keys"] = {
            r["key_id"][len(name) + 1 :]: _present(r, ("description", "utype"))
            for r in keys
        }
    return document


def _index(published: asyncpg.Record | None, row: asyncpg.Record) -> int:
    if published is None or published["column_index"] is None:
        return int(row["position"])
    return int(published["column_index"])


def _column(published: asyncpg.Record | None, row: asyncpg.Record) -> _Table:
    """A column's keys: what TAP_SCHEMA holds beyond what publishing derives."""
    if published is None:
        return {}
    column = _present(published, ("description", "unit", "ucd", "utype"))
    if not published["principal"]:
        column["principal"] = False
    if published["std"]:
        column["std"] = True
    if bool(published["indexed"]) != row["indexed"]:
        column["indexed"] = bool(published["indexed"])
    if published["column_index"] not in (None, row["position"]):
        column["column_index"] = published["column_index"]
    declared = (published["datatype"], published["arraysize"], published["xtype"])
    derived = derived_type(row)
    if declared != derived:  # the whole declaration, none only where it differs
        for key, value, own in zip(_TYPE_KEYS, declared, derived, strict=True):
            if value is not None or value != own:
                column[key] = value or ""
    return column


_TYPE_KEYS = ("datatype", "arraysize", "xtype")


def _present(row: asyncpg.Record | None, keys: tuple[str, ...]) -> _Table:
    """The values of ``keys`` in ``row`` that are not NULL (nor empty)."""
    if row is None:
        return {}
    return {key: row[key] for key in keys if row[key] not in (None, "")}

"""How TAP_SCHEMA spells PostgreSQL names (ADQL), and how SQL quotes them."""

from __future__ import annotations

import re

from taprunner.adql.grammar import needs_delimiting
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TapSchemaError

__all__ = ["adql_name", "literal", "quote", "relation_oid", "split", "table_name"]

_REGULAR_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


def adql_name(identifier: str) -> str:
    """Return ``identifier`` as written in ADQL: bare if regular and no word ADQL
    reserves (``distance`` is published as ``"distance"``), else quoted."""
    if _REGULAR_IDENTIFIER.fullmatch(identifier) and not needs_delimiting(identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def split(qualified_table: str) -> tuple[str, str]:
    """Split ``schema.table`` (PostgreSQL names, quotes not allowed)."""
    schema, dot, table = qualified_table.partition(".")
    if not dot or not schema or not table or "." in table:
        raise TapSchemaError(
            f"table name {qualified_table!r} must be qualified as schema.table"
        )
    return schema, table


def table_name(schema: str, table: str) -> str:
    return f"{adql_name(schema)}.{adql_name(table)}"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def relation_oid(conn: Connection, schema: str, table: str) -> int | None:
    """The OID of the table, view or foreign table ``schema.table`` (None: none)."""
    oid: int | None = await conn.fetchval(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2"
        " AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        schema,
        table,
    )
    return oid

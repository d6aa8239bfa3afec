"""TAP_SCHEMA: install it, publish PostgreSQL tables in it, and read it back.

Names in TAP_SCHEMA rows are spelt as used in ADQL: qualified table names,
lowercase (``demo.stars``, ``tap_schema.tables``), since ADQL regular identifiers
are case-insensitive and clients asking for ``TAP_SCHEMA.tables`` find them;
names that are not regular lowercase identifiers are stored with their double
quotes (TAP 1.1 section 4).
Column datatypes are VOTable datatype names (TAP 1.1 section 4.3), mapped from
PostgreSQL types by :func:`votable_type`. Reading TAP_SCHEMA back lives in
:mod:`taprunner.schema.catalog`, metadata files in :mod:`taprunner.schema.metadata`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

import asyncpg

from aiouws.storage import queryrole
from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.queryrole import Grant
from taprunner.adql.grammar import needs_delimiting
from taprunner.schema import access
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TableMetadata, TapSchemaError

__all__ = [
    "QUERY_ROLE",
    "adql_name",
    "install",
    "publish",
    "query_role_problems",
    "unpublish",
    "votable_type",
]


TAP_SCHEMA = "tap_schema"
TAP_UPLOAD = "tap_upload"

_REGULAR_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


# --------------------------------------------------------------------------------
# PostgreSQL types to VOTable datatypes

# typname -> (datatype, arraysize, xtype); arraysize None means a scalar.
_SCALAR_TYPES: Mapping[str, tuple[str, str | None, str | None]] = {
    "bool": ("boolean", None, None),
    "int2": ("short", None, None),
    "int4": ("int", None, None),
    "int8": ("long", None, None),
    "float4": ("float", None, None),
    "float8": ("double", None, None),
    "numeric": ("double", None, None),
    # Text is unicodeChar: the result writer emits it so, because astropy reads
    # binary ``char`` as ASCII only and so fails on any non-ASCII value.
    "text": ("unicodeChar", "*", None),
    "name": ("unicodeChar", "*", None),
    "char": ("unicodeChar", "1", None),
    "uuid": ("char", "36", None),
    "bytea": ("unsignedByte", "*", None),
    "date": ("char", "*", "timestamp"),
    "timestamp": ("char", "*", "timestamp"),
    "timestamptz": ("char", "*", "timestamp"),
    "spoint": ("double", "2", "point"),
    "scircle": ("double", "3", "circle"),
    "spoly": ("double", "*", "polygon"),
}
_ARRAY_ELEMENTS = {"bool", "int2", "int4", "int8", "float4", "float8", "numeric"}
_FALLBACK = ("unicodeChar", "*", None)


def votable_type(
    typname: str, typmod: int = -1, *, array: bool = False
) -> tuple[str, str | None, str | None]:
    """Map a PostgreSQL type to ``(datatype, arraysize, xtype)`` for TAP_SCHEMA.

    ``typname`` is ``pg_type.typname`` (the element type for arrays) and
    ``typmod`` is ``pg_attribute.atttypmod``. Types without a VOTable
    equivalent (time, interval, json, ...) are published as ``char *``: the
    VOTable writer renders them as text.
    """
    if array:
        if typname in _ARRAY_ELEMENTS:
            return _SCALAR_TYPES[typname][0], "*", None
        return _FALLBACK
    if typname in ("varchar", "bpchar"):
        if typmod < 4:
            return "unicodeChar", "*", None
        length = typmod - 4
        size = f"{length}*" if typname == "varchar" else str(length)
        return "unicodeChar", size, None
    return _SCALAR_TYPES.get(typname, _FALLBACK)


def adql_name(identifier: str) -> str:
    """Return ``identifier`` as written in ADQL: bare if regular and no word ADQL
    reserves (``distance`` is published as ``"distance"``), else quoted."""
    if _REGULAR_IDENTIFIER.fullmatch(identifier) and not needs_delimiting(identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


# --------------------------------------------------------------------------------
# Installation


async def install(conn: Connection) -> list[str]:
    """Create TAP_SCHEMA, TAP_UPLOAD and the query role's grants; idempotent.

    The login role :data:`QUERY_ROLE` (:mod:`aiouws.storage.queryrole`: created
    if missing, CONNECT and TEMPORARY on this database) gets USAGE on TAP_SCHEMA
    and TAP_UPLOAD, SELECT on TAP_SCHEMA's tables and on every table already
    published. Returns the statements the current user may not run (see
    :func:`aiouws.storage.queryrole.apply`), for an administrator.
    """
    sql = (
        resources.files("taprunner.schema")
        .joinpath("sql/tap_schema.sql")
        .read_text("utf-8")
    )
    async with conn.transaction():
        await conn.execute(sql)
        missing = await queryrole.ensure_query_role(conn)
        grants = [_usage(TAP_SCHEMA), _usage(TAP_UPLOAD)]
        grants += [
            _select(TAP_SCHEMA, r["tablename"])
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", TAP_SCHEMA
            )
        ]
        names = await conn.fetch("SELECT table_name FROM tap_schema.tables")
        for row in names:
            schema, table = _split(row["table_name"])
            if schema != TAP_SCHEMA and await _relation_oid(conn, schema, table):
                grants += [_usage(schema), _select(schema, table)]
        missing += await queryrole.apply(conn, grants)
        # Proprietary tables: their SELECT goes back to their principals only.
        return missing + await access.install(conn)


def _usage(schema: str) -> Grant:
    return Grant(
        f"SELECT has_schema_privilege('{QUERY_ROLE}', {_literal(schema)}, 'USAGE')",
        f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {queryrole.ROLE_SQL}",
    )


def _select(schema: str, table: str) -> Grant:
    target = f"{_quote(schema)}.{_quote(table)}"
    return Grant(
        f"SELECT has_table_privilege('{QUERY_ROLE}', {_literal(target)}, 'SELECT')",
        f"GRANT SELECT ON {target} TO {queryrole.ROLE_SQL}",
    )


async def query_role_problems(conn: Connection) -> list[str]:
    """What makes the session of ``conn`` (a query connection) no privilege
    boundary (:func:`aiouws.storage.queryrole.login_problems`), and published
    tables it may write."""
    problems = await queryrole.login_problems(conn)
    writable = await conn.fetch(
        "SELECT table_name FROM tap_schema.tables"
        " WHERE to_regclass(table_name) IS NOT NULL AND has_table_privilege("
        "to_regclass(table_name), 'INSERT, UPDATE, DELETE, TRUNCATE')"
    )
    problems += [f"it may write the published table {r[0]}" for r in writable]
    return problems


# --------------------------------------------------------------------------------
# Publishing

_COLUMNS_SQL = """
SELECT a.attname AS name, a.attnum AS position, a.atttypmod AS typmod,
       CASE WHEN t.typcategory = 'A' THEN e.typname ELSE t.typname END AS typname,
       t.typcategory = 'A' AS is_array,
       EXISTS (
           SELECT FROM pg_index i
           WHERE i.indrelid = a.attrelid
             AND (i.indkey[0] = a.attnum
                  OR (i.indexprs IS NOT NULL AND EXISTS (
                      SELECT FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass
                        AND d.objid = i.indexrelid
                        AND d.refobjid = a.attrelid
                        AND d.refobjsubid = a.attnum)))
       ) AS indexed
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type e ON e.oid = t.typelem
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_INSERT_COLUMN_SQL = """
INSERT INTO tap_schema.columns
    (table_name, column_name, datatype, arraysize, xtype, "size", description,
     utype, unit, ucd, indexed, principal, std, column_index)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""

# Foreign keys between a table and other tables, both directions, one row per
# column pair, in constraint column order.
_FOREIGN_KEYS_SQL = """
SELECT c.conname, fn.nspname AS from_schema, fc.relname AS from_table,
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


async def publish(
    conn: Connection,
    qualified_table: str,
    metadata: TableMetadata | None = None,
) -> list[str]:
    """Publish ``schema.table`` in TAP_SCHEMA and let the query role read it.

    Returns the GRANTs the current user may not run (not the table's owner), for
    an administrator (see :func:`aiouws.storage.queryrole.apply`).

    Column names, datatypes and ``indexed`` come from the PostgreSQL catalog,
    the rest from ``metadata``. Rows of an earlier publication of the same
    table are replaced. Foreign keys to and from other published tables are
    published too.

    Raises
    ------
    TapSchemaError
        If the name is not qualified, the table does not exist, TAP_SCHEMA is
        not installed, or ``metadata`` names columns the table lacks.
    """
    metadata = metadata or TableMetadata()
    schema, table = _split(qualified_table)
    async with conn.transaction():
        await _check_installed(conn)
        oid = await _relation_oid(conn, schema, table)
        if oid is None:
            raise TapSchemaError(f"unknown table {qualified_table!r}")
        columns = await conn.fetch(_COLUMNS_SQL, oid)
        unknown = {c.name for c in metadata.columns} - {r["name"] for r in columns}
        if unknown:
            raise TapSchemaError(
                f"metadata for {qualified_table!r} names unknown columns: "
                + ", ".join(sorted(unknown))
            )
        name = _table_name(schema, table)
        await _delete_rows(conn, name)
        await _insert_schema(conn, schema, metadata.schema_description)
        await conn.execute(
            "INSERT INTO tap_schema.tables (schema_name, table_name, table_type,"
            " utype, description, table_index) VALUES ($1, $2, $3, $4, $5, $6)",
            adql_name(schema),
            name,
            await _table_type(conn, oid),
            metadata.utype,
            metadata.description,
            metadata.table_index,
        )
        await conn.executemany(
            _INSERT_COLUMN_SQL, [_column_row(name, r, metadata) for r in columns]
        )
        await _publish_keys(conn, oid)
        missing = await queryrole.apply(conn, [_usage(schema), _select(schema, table)])
        # A restricted table (or schema): readable by its principals only.
        return missing + await access.enforce(conn)


def _column_row(
    table_name: str, row: asyncpg.Record, metadata: TableMetadata
) -> tuple[object, ...]:
    datatype, arraysize, xtype = votable_type(
        row["typname"], row["typmod"], array=row["is_array"]
    )
    size = int(arraysize) if arraysize is not None and arraysize.isdigit() else None
    meta = metadata.column(row["name"])
    return (
        table_name,
        adql_name(row["name"]),
        datatype,
        arraysize,
        xtype,
        size if datatype in ("char", "unicodeChar") else None,
        meta.description,
        meta.utype,
        meta.unit,
        meta.ucd,
        int(row["indexed"]),
        int(meta.principal),
        int(meta.std),
        row["position"],
    )


async def _publish_keys(conn: Connection, oid: int) -> None:
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
        await conn.execute(
            "INSERT INTO tap_schema.keys (key_id, from_table, target_table)"
            " VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
            key_id,
            _table_name(first["from_schema"], first["from_table"]),
            _table_name(first["target_schema"], first["target_table"]),
        )
        await conn.executemany(
            "INSERT INTO tap_schema.key_columns (key_id, from_column, target_column)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [
                (key_id, adql_name(r["from_column"]), adql_name(r["target_column"]))
                for r in rows
            ],
        )


async def unpublish(conn: Connection, qualified_table: str) -> list[str]:
    """Remove ``schema.table`` from TAP_SCHEMA and revoke the query role's SELECT.

    The schema row goes too once it holds no published table. Returns the REVOKE
    if the current user may not run it (see :func:`publish`).

    Raises
    ------
    TapSchemaError
        If the name is not qualified or the table is not published.
    """
    schema, table = _split(qualified_table)
    name = _table_name(schema, table)
    async with conn.transaction():
        await _check_installed(conn)
        if not await _delete_rows(conn, name):
            raise TapSchemaError(f"table {qualified_table!r} is not published")
        await conn.execute(
            "DELETE FROM tap_schema.schemas s WHERE schema_name = $1"
            " AND NOT EXISTS (SELECT FROM tap_schema.tables t"
            " WHERE t.schema_name = s.schema_name)",
            adql_name(schema),
        )
        if await _relation_oid(conn, schema, table) is None:
            return []
        target = f"{_quote(schema)}.{_quote(table)}"
        revoke = Grant(
            f"SELECT NOT has_table_privilege('{QUERY_ROLE}', {_literal(target)},"
            " 'SELECT')",
            f"REVOKE SELECT ON {target} FROM {queryrole.ROLE_SQL}",
        )
        return await queryrole.apply(conn, [revoke]) + await access.enforce(conn)


async def _delete_rows(conn: Connection, table_name: str) -> bool:
    """Delete the TAP_SCHEMA rows of one table (columns and keys cascade)."""
    deleted = await conn.fetchval(
        "WITH d AS (DELETE FROM tap_schema.tables WHERE table_name = $1 RETURNING 1)"
        " SELECT count(*) FROM d",
        table_name,
    )
    return bool(deleted)


async def _insert_schema(
    conn: Connection, schema: str, description: str | None
) -> None:
    await conn.execute(
        "INSERT INTO tap_schema.schemas (schema_name, description) VALUES ($1, $2)"
        " ON CONFLICT (schema_name) DO UPDATE"
        " SET description = coalesce(EXCLUDED.description, schemas.description)",
        adql_name(schema),
        description,
    )


async def _check_installed(conn: Connection) -> None:
    if await conn.fetchval("SELECT to_regclass('tap_schema.columns')") is None:
        raise TapSchemaError("TAP_SCHEMA is not installed: call install() first")


async def _relation_oid(conn: Connection, schema: str, table: str) -> int | None:
    oid: int | None = await conn.fetchval(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2"
        " AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
        schema,
        table,
    )
    return oid


async def _table_type(conn: Connection, oid: int) -> str:
    is_view = await conn.fetchval(
        "SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = $1", oid
    )
    return "view" if is_view else "table"


def _split(qualified_table: str) -> tuple[str, str]:
    """Split ``schema.table`` (PostgreSQL names, quotes not allowed)."""
    schema, dot, table = qualified_table.partition(".")
    if not dot or not schema or not table or "." in table:
        raise TapSchemaError(
            f"table name {qualified_table!r} must be qualified as schema.table"
        )
    return schema, table


def _table_name(schema: str, table: str) -> str:
    return f"{adql_name(schema)}.{adql_name(table)}"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

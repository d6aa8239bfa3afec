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

from importlib import resources

import asyncpg

from aiouws.storage import queryrole
from aiouws.storage.database import QUERY_ROLE
from aiouws.storage.queryrole import Grant
from taprunner.schema import access
from taprunner.schema.catalog import Connection
from taprunner.schema.columns import (
    COLUMNS_SQL,
    check_array_lengths,
    column_type,
    votable_type,
)
from taprunner.schema.keys import key_descriptions, publish_keys
from taprunner.schema.metadata import (
    MetadataError,
    SchemaMetadata,
    TableMetadata,
    TapSchemaError,
    toml_key,
)
from taprunner.schema.names import adql_name, relation_oid
from taprunner.schema.names import literal as _literal
from taprunner.schema.names import quote as _quote
from taprunner.schema.names import split as _split
from taprunner.schema.names import table_name as _table_name

__all__ = [
    "QUERY_ROLE",
    "adql_name",
    "install",
    "publish",
    "publish_schema",
    "query_role_problems",
    "unpublish",
    "votable_type",
]


TAP_SCHEMA = "tap_schema"
TAP_UPLOAD = "tap_upload"


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
            if schema != TAP_SCHEMA and await relation_oid(conn, schema, table):
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

_INSERT_COLUMN_SQL = """
INSERT INTO tap_schema.columns
    (table_name, column_name, datatype, arraysize, xtype, "size", description,
     utype, unit, ucd, indexed, principal, std, column_index)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""

#: Tables the planner estimates at this many rows or more get that estimate as
#: their ``nrows`` (VODataService: "not expected to be exact"); smaller ones are
#: counted.
COUNT_BELOW = 1_000_000


async def publish(
    conn: Connection,
    qualified_table: str,
    metadata: TableMetadata | None = None,
) -> list[str]:
    """Publish ``schema.table`` in TAP_SCHEMA and let the query role read it.

    Returns the GRANTs the current user may not run (not the table's owner), for
    an administrator (see :func:`aiouws.storage.queryrole.apply`).

    Column names, datatypes and ``indexed`` come from the PostgreSQL catalog,
    the rest from ``metadata``, which may also declare a column's type
    (:func:`taprunner.schema.columns.column_type`), ``indexed`` and
    ``column_index``. ``nrows`` is counted (the planner's estimate from
    :data:`COUNT_BELOW` rows on; none for views) unless ``metadata`` gives it.
    Rows of an earlier publication of the same table are replaced. Foreign keys
    to and from other published tables are published too, with the
    descriptions ``metadata`` gives those of this table (those of other tables'
    keys are kept).

    Raises
    ------
    MetadataError
        If ``metadata`` names columns or foreign keys the table lacks, or
        declares a type its values do not fit.
    TapSchemaError
        If the name is not qualified, the table does not exist, or TAP_SCHEMA is
        not installed.
    """
    metadata = metadata or TableMetadata()
    schema, table = _split(qualified_table)
    async with conn.transaction():
        await _check_installed(conn)
        oid = await relation_oid(conn, schema, table)
        if oid is None:
            raise TapSchemaError(f"unknown table {qualified_table!r}")
        columns = await conn.fetch(COLUMNS_SQL, oid)
        _check_names(metadata, qualified_table, {r["name"] for r in columns}, "columns")
        constraints = await conn.fetch(
            "SELECT conname FROM pg_constraint WHERE conrelid = $1 AND contype = 'f'",
            oid,
        )
        _check_names(
            metadata,
            qualified_table,
            {r["conname"] for r in constraints},
            "foreign_keys",
        )
        rows = [await _column_row(conn, schema, table, r, metadata) for r in columns]
        name = _table_name(schema, table)
        kept = await key_descriptions(conn, name)
        await _delete_rows(conn, name)
        await _insert_schema(conn, schema, metadata)
        await conn.execute(
            "INSERT INTO tap_schema.tables (schema_name, table_name, table_type,"
            " utype, description, table_index, nrows)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            adql_name(schema),
            name,
            await _table_type(conn, oid),
            metadata.utype,
            metadata.description,
            metadata.table_index,
            metadata.nrows
            if metadata.nrows is not None
            else await _row_count(conn, oid, schema, table),
        )
        await conn.executemany(_INSERT_COLUMN_SQL, rows)
        await publish_keys(conn, oid, metadata, kept)
        missing = await queryrole.apply(conn, [_usage(schema), _select(schema, table)])
        # A restricted table (or schema): readable by its principals only.
        return missing + await access.enforce(conn)


async def publish_schema(
    conn: Connection, schema: str, metadata: SchemaMetadata
) -> list[str]:
    """Publish every table a schema file describes, in one transaction.

    Foreign keys between them get the descriptions the file gives, whichever
    table comes first. Returns the GRANTs the current user may not run.

    Raises
    ------
    MetadataError
        If the file names a table the schema lacks, or as :func:`publish`
        (the key named within ``tables.NAME``).
    TapSchemaError
        As :func:`publish`.
    """
    missing: list[str] = []
    async with conn.transaction():
        await _check_installed(conn)
        oids: dict[str, int] = {}
        for name in metadata.tables:
            oid = await relation_oid(conn, schema, name)
            if oid is None:
                raise MetadataError(
                    metadata.source,
                    f"tables.{toml_key(name)}",
                    f"there is no table {schema}.{name}",
                )
            oids[name] = oid
        for name, table in metadata.tables.items():
            try:
                missing += await publish(conn, f"{schema}.{name}", table)
            except MetadataError as exc:
                raise exc.within(name) from exc
        for name, table in metadata.tables.items():  # keys to later tables
            await publish_keys(conn, oids[name], table, {})
    return missing


def _check_names(
    metadata: TableMetadata, table: str, present: set[str], what: str
) -> None:
    """Refuse metadata for columns or foreign keys (``what``) the table lacks."""
    given = (
        [c.name for c in metadata.columns]
        if what == "columns"
        else [k.name for k in metadata.foreign_keys]
    )
    for name in given:
        if name not in present:
            known = ", ".join(sorted(present)) or "none"
            raise MetadataError(
                metadata.source,
                f"{what}.{toml_key(name)}",
                f"{table} has no such {what[:-1].replace('_', ' ')} (it has: {known})",
            )


async def _column_row(
    conn: Connection,
    schema: str,
    table: str,
    row: asyncpg.Record,
    metadata: TableMetadata,
) -> tuple[object, ...]:
    meta = metadata.column(row["name"])
    datatype, arraysize, xtype = column_type(
        row,
        meta,
        source=metadata.source,
        where=f"columns.{toml_key(row['name'])}.",
    )
    if meta.arraysize and arraysize is not None and row["is_array"]:
        relation = f"{_quote(schema)}.{_quote(table)}"
        wrong = await check_array_lengths(
            conn, relation, _quote(row["name"]), arraysize
        )
        if wrong:
            raise MetadataError(
                metadata.source,
                f"columns.{toml_key(row['name'])}.arraysize",
                f"{wrong} rows of {schema}.{table} hold arrays that do not fit"
                f" arraysize {arraysize}",
            )
    size = int(arraysize) if arraysize is not None and arraysize.isdigit() else None
    return (
        _table_name(schema, table),
        adql_name(row["name"]),
        datatype,
        arraysize,
        xtype,
        size if datatype in ("char", "unicodeChar") else None,
        meta.description,
        meta.utype,
        meta.unit,
        meta.ucd,
        int(row["indexed"] if meta.indexed is None else meta.indexed),
        int(meta.principal),
        int(meta.std),
        row["position"] if meta.column_index is None else meta.column_index,
    )


async def _row_count(conn: Connection, oid: int, schema: str, table: str) -> int | None:
    """The table's rows: counted below :data:`COUNT_BELOW` (the planner's
    estimate), else the estimate; None for views and foreign tables."""
    row = await conn.fetchrow(
        "SELECT relkind::text, reltuples FROM pg_class WHERE oid = $1", oid
    )
    if row is None or row["relkind"] in ("v", "f"):
        return None
    if row["reltuples"] >= COUNT_BELOW:
        return int(row["reltuples"])
    counted: int = await conn.fetchval(
        f"SELECT count(*) FROM {_quote(schema)}.{_quote(table)}"
    )
    return counted


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
        if await relation_oid(conn, schema, table) is None:
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
    conn: Connection, schema: str, metadata: TableMetadata
) -> None:
    """Add the schema's row, or update the values ``metadata`` gives."""
    await conn.execute(
        "INSERT INTO tap_schema.schemas (schema_name, description, utype,"
        " schema_index) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (schema_name) DO UPDATE"
        " SET description = coalesce(EXCLUDED.description, schemas.description),"
        " utype = coalesce(EXCLUDED.utype, schemas.utype),"
        " schema_index = coalesce(EXCLUDED.schema_index, schemas.schema_index)",
        adql_name(schema),
        metadata.schema_description,
        metadata.schema_utype,
        metadata.schema_index,
    )


async def _check_installed(conn: Connection) -> None:
    if await conn.fetchval("SELECT to_regclass('tap_schema.columns')") is None:
        raise TapSchemaError("TAP_SCHEMA is not installed: call install() first")


async def _table_type(conn: Connection, oid: int) -> str:
    is_view = await conn.fetchval(
        "SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = $1", oid
    )
    return "view" if is_view else "table"

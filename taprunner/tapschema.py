"""TAP_SCHEMA: install it, publish PostgreSQL tables in it, and read it back.

Names in TAP_SCHEMA rows are spelt as used in ADQL: qualified table names,
lowercase (``demo.stars``, ``tap_schema.tables``), since ADQL regular identifiers
are case-insensitive and clients asking for ``TAP_SCHEMA.tables`` find them;
names that are not regular lowercase identifiers are stored with their double
quotes (TAP 1.1 section 4).
Column datatypes are VOTable datatype names (TAP 1.1 section 4.3), mapped from
PostgreSQL types by :func:`votable_type`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)
"""A plain connection or one acquired from a pool: every function accepts both."""

QUERY_ROLE = "aiouws_query"
"""NOLOGIN role that user queries run as (``SET ROLE``); it may only SELECT."""

TAP_SCHEMA = "tap_schema"
TAP_UPLOAD = "tap_upload"

_REGULAR_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


class TapSchemaError(Exception):
    """A table cannot be published or unpublished, or metadata is invalid."""


# --------------------------------------------------------------------------------
# Models


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMetadata:
    """Curated metadata for one column, as read from a metadata file."""

    name: str
    description: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    principal: bool = True
    std: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TableMetadata:
    """Curated metadata for one table; the PostgreSQL catalog supplies the rest."""

    description: str | None = None
    utype: str | None = None
    table_index: int | None = None
    schema_description: str | None = None
    columns: tuple[ColumnMetadata, ...] = ()

    def column(self, name: str) -> ColumnMetadata:
        """Return the metadata of column ``name`` (defaults if not given)."""
        for column in self.columns:
            if column.name == name:
                return column
        return ColumnMetadata(name=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnInfo:
    """One row of TAP_SCHEMA.columns, as the translator and VOTable writer need it."""

    name: str
    datatype: str
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None
    indexed: bool = False
    principal: bool = False
    std: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ForeignKeyInfo:
    """One row of TAP_SCHEMA.keys with its column pairs (from, target)."""

    key_id: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str | None = None
    utype: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TableInfo:
    """One row of TAP_SCHEMA.tables with its columns, in column_index order."""

    schema: str
    name: str
    description: str | None
    type: str
    columns: tuple[ColumnInfo, ...]
    utype: str | None = None
    foreign_keys: tuple[ForeignKeyInfo, ...] = ()


# --------------------------------------------------------------------------------
# Metadata files

_TABLE_KEYS = {"description", "utype", "table_index", "schema_description", "columns"}
_COLUMN_STR_KEYS = {"description", "unit", "ucd", "utype"}
_COLUMN_BOOL_KEYS = {"principal", "std"}


def load_metadata(path: Path | str) -> TableMetadata:
    """Read table metadata from a TOML file.

    The file has optional top-level keys ``description``, ``utype``,
    ``table_index`` and ``schema_description``, and one ``[columns.<name>]``
    table per column with optional ``description``, ``unit``, ``ucd``,
    ``utype`` (strings) and ``principal``, ``std`` (booleans).

    Raises
    ------
    TapSchemaError
        If the file cannot be read, is not TOML, or has unknown keys or wrong types.
    """
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TapSchemaError(f"cannot read metadata file {path}: {exc}") from exc
    return parse_metadata(data, source=str(path))


def parse_metadata(
    data: Mapping[str, object], *, source: str = "metadata"
) -> TableMetadata:
    """Build :class:`TableMetadata` from a parsed TOML document (see load_metadata)."""
    _check_keys(data, _TABLE_KEYS, source)
    raw_columns = data.get("columns", {})
    if not isinstance(raw_columns, Mapping):
        raise TapSchemaError(f"{source}: 'columns' must be a table")
    columns = tuple(
        _parse_column(name, value, f"{source}: columns.{name}")
        for name, value in raw_columns.items()
    )
    table_index = data.get("table_index")
    if table_index is not None and (
        not isinstance(table_index, int) or isinstance(table_index, bool)
    ):
        raise TapSchemaError(f"{source}: 'table_index' must be an integer")
    return TableMetadata(
        description=_optional_str(data, "description", source),
        utype=_optional_str(data, "utype", source),
        table_index=table_index,
        schema_description=_optional_str(data, "schema_description", source),
        columns=columns,
    )


def _parse_column(name: str, value: object, source: str) -> ColumnMetadata:
    if not isinstance(value, Mapping):
        raise TapSchemaError(f"{source} must be a table")
    _check_keys(value, _COLUMN_STR_KEYS | _COLUMN_BOOL_KEYS, source)
    flags: dict[str, bool] = {}
    for key in _COLUMN_BOOL_KEYS & value.keys():
        if not isinstance(value[key], bool):
            raise TapSchemaError(f"{source}: '{key}' must be a boolean")
        flags[key] = value[key]
    return ColumnMetadata(
        name=name,
        description=_optional_str(value, "description", source),
        unit=_optional_str(value, "unit", source),
        ucd=_optional_str(value, "ucd", source),
        utype=_optional_str(value, "utype", source),
        principal=flags.get("principal", True),
        std=flags.get("std", False),
    )


def _check_keys(data: Mapping[str, object], allowed: set[str], source: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise TapSchemaError(f"{source}: unknown keys {', '.join(unknown)}")


def _optional_str(data: Mapping[str, object], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TapSchemaError(f"{source}: '{key}' must be a string")
    return value


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
    """Return ``identifier`` as written in ADQL: bare if regular, else quoted."""
    if _REGULAR_IDENTIFIER.fullmatch(identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


# --------------------------------------------------------------------------------
# Installation


async def install(conn: Connection) -> None:
    """Create TAP_SCHEMA, TAP_UPLOAD and the read-only query role; idempotent.

    The role :data:`QUERY_ROLE` is cluster-wide and NOLOGIN. It is granted to
    the current user so that the runner may ``SET ROLE`` to it, and it gets
    USAGE and SELECT on TAP_SCHEMA and every table already published.
    """
    sql = resources.files("taprunner").joinpath("sql/tap_schema.sql").read_text("utf-8")
    async with conn.transaction():
        await conn.execute(sql)
        await _ensure_role(conn)
        await conn.execute(
            f"GRANT USAGE ON SCHEMA {TAP_SCHEMA}, {TAP_UPLOAD} TO {QUERY_ROLE};"
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {TAP_SCHEMA} TO {QUERY_ROLE};"
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {TAP_UPLOAD}"
            f" GRANT SELECT ON TABLES TO {QUERY_ROLE}"
        )
        names = await conn.fetch("SELECT table_name FROM tap_schema.tables")
        for row in names:
            schema, table = _split(row["table_name"])
            if await _relation_oid(conn, schema, table) is not None:
                await _grant(conn, schema, table)


async def _ensure_role(conn: Connection) -> None:
    # Roles are cluster-wide: several databases (or concurrent installs) may race
    # to create it, hence the exception handler rather than a plain check.
    await conn.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{QUERY_ROLE}') THEN
                CREATE ROLE {QUERY_ROLE} NOLOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$;
        """
    )
    is_member = await conn.fetchval(
        "SELECT pg_has_role(current_user, $1, 'MEMBER')", QUERY_ROLE
    )
    if not is_member:
        await conn.execute(f"GRANT {QUERY_ROLE} TO CURRENT_USER")


async def _grant(conn: Connection, schema: str, table: str) -> None:
    target = f"{_quote(schema)}.{_quote(table)}"
    await conn.execute(
        f"GRANT USAGE ON SCHEMA {_quote(schema)} TO {QUERY_ROLE};"
        f"GRANT SELECT ON {target} TO {QUERY_ROLE}"
    )


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
) -> None:
    """Publish ``schema.table`` in TAP_SCHEMA and let the query role read it.

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
        await _grant(conn, schema, table)


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


async def unpublish(conn: Connection, qualified_table: str) -> None:
    """Remove ``schema.table`` from TAP_SCHEMA and revoke the query role's SELECT.

    The schema row goes too once it holds no published table.

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
        if await _relation_oid(conn, schema, table) is not None:
            await conn.execute(
                f"REVOKE SELECT ON {_quote(schema)}.{_quote(table)} FROM {QUERY_ROLE}"
            )


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


# --------------------------------------------------------------------------------
# Reading TAP_SCHEMA back


async def load_tables(conn: Connection) -> tuple[TableInfo, ...]:
    """Read every published table with its columns and foreign keys.

    Tables are ordered by schema_index, schema_name, table_index, table_name;
    columns by column_index.
    """
    tables = await conn.fetch(
        "SELECT t.schema_name, t.table_name, t.table_type, t.utype, t.description"
        " FROM tap_schema.tables t"
        " JOIN tap_schema.schemas s ON s.schema_name = t.schema_name"
        " ORDER BY s.schema_index NULLS FIRST, s.schema_name,"
        " t.table_index NULLS LAST, t.table_name"
    )
    columns = await conn.fetch(
        "SELECT * FROM tap_schema.columns"
        " ORDER BY table_name, column_index, column_name"
    )
    keys = await conn.fetch(
        "SELECT k.key_id, k.from_table, k.target_table, k.description, k.utype,"
        " c.from_column, c.target_column"
        " FROM tap_schema.keys k JOIN tap_schema.key_columns c USING (key_id)"
        " ORDER BY k.key_id, c.from_column"
    )
    by_table: dict[str, list[ColumnInfo]] = {}
    for row in columns:
        by_table.setdefault(row["table_name"], []).append(_column_info(row))
    return tuple(
        TableInfo(
            schema=row["schema_name"],
            name=row["table_name"],
            description=row["description"],
            type=row["table_type"],
            utype=row["utype"],
            columns=tuple(by_table.get(row["table_name"], ())),
            foreign_keys=_foreign_keys(row["table_name"], keys),
        )
        for row in tables
    )


def _column_info(row: asyncpg.Record) -> ColumnInfo:
    return ColumnInfo(
        name=row["column_name"],
        datatype=row["datatype"],
        arraysize=row["arraysize"],
        xtype=row["xtype"],
        unit=row["unit"],
        ucd=row["ucd"],
        utype=row["utype"],
        description=row["description"],
        indexed=bool(row["indexed"]),
        principal=bool(row["principal"]),
        std=bool(row["std"]),
    )


def _foreign_keys(
    table_name: str, rows: Iterable[asyncpg.Record]
) -> tuple[ForeignKeyInfo, ...]:
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        if row["from_table"] == table_name:
            grouped.setdefault(row["key_id"], []).append(row)
    return tuple(
        ForeignKeyInfo(
            key_id=key_id,
            target_table=group[0]["target_table"],
            columns=tuple((r["from_column"], r["target_column"]) for r in group),
            description=group[0]["description"],
            utype=group[0]["utype"],
        )
        for key_id, group in grouped.items()
    )


_NAME_PART = re.compile(r'"(?:[^"]|"")*"|[^.]+')


def database_name(adql: str) -> str:
    """Return the database spelling of a TAP_SCHEMA name: quotes removed.

    ``'"Odd Name"'`` gives ``'Odd Name'``; regular names are unchanged, and
    each part of a qualified name is unquoted separately.
    """
    parts = _NAME_PART.findall(adql)
    return ".".join(
        p[1:-1].replace('""', '"') if p.startswith('"') else p for p in parts
    )


@dataclass(frozen=True, slots=True)
class TapCatalog:
    """The published tables as the ADQL translator's catalogue.

    Table and column names are looked up case-insensitively and without the
    quotes TAP_SCHEMA keeps on delimited identifiers; :meth:`columns_of` gives
    column names as spelt in the database. An unqualified table name resolves
    only if exactly one schema holds a table of that name.
    """

    tables: tuple[TableInfo, ...]
    _by_name: Mapping[str, TableInfo] = field(init=False, repr=False, compare=False)
    _by_short_name: Mapping[str, tuple[TableInfo, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_name: dict[str, TableInfo] = {}
        by_short: dict[str, list[TableInfo]] = {}
        for table in self.tables:
            schema, _, short = database_name(table.name).lower().rpartition(".")
            by_name[f"{schema}.{short}"] = table
            by_short.setdefault(short, []).append(table)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(
            self, "_by_short_name", {k: tuple(v) for k, v in by_short.items()}
        )

    @classmethod
    async def load(cls, conn: Connection) -> TapCatalog:
        """Build the catalogue from TAP_SCHEMA."""
        return cls(await load_tables(conn))

    def table(self, table: str) -> TableInfo | None:
        """Return the published table named ``table`` (qualified or unique)."""
        key = table.lower()
        if "." in key:
            return self._by_name.get(key)
        candidates = self._by_short_name.get(key, ())
        return candidates[0] if len(candidates) == 1 else None

    def columns_of(self, table: str) -> Sequence[str] | None:
        """Column names of ``table`` in column_index order, or None if unknown."""
        info = self.table(table)
        if info is None:
            return None
        return tuple(database_name(c.name) for c in info.columns)

    def column_info(self, table: str, column: str) -> ColumnInfo | None:
        """Metadata of ``column`` in ``table``, or None if either is unknown."""
        info = self.table(table)
        if info is None:
            return None
        wanted = column.lower()
        return next(
            (c for c in info.columns if database_name(c.name).lower() == wanted),
            None,
        )

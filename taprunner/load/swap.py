"""Loading files into a published table in one transaction: all or nothing.

A new or replaced table is built under a staging name (rows, primary key,
position index), then the old table is dropped, the staging one renamed, the
table analysed and published, and only the COMMIT makes it visible: a bad file
leaves the previous table and its TAP_SCHEMA entry as they were. ``append``
copies into the existing table in the same kind of transaction (its rows appear
at COMMIT or never).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg

from taprunner.load.columns import (
    LoadError,
    check_same_columns,
    header_metadata,
    normalise_names,
    pg_type,
)
from taprunner.load.copy import copy_source
from taprunner.load.metamerge import merge_metadata, published_metadata
from taprunner.load.positions import check_positions
from taprunner.load.readers import open_source
from taprunner.load.source import Source
from taprunner.schema import tapschema
from taprunner.schema.catalog import Connection
from taprunner.schema.metadata import TableMetadata

__all__ = ["LoadOptions", "LoadReport", "load_files"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadOptions:
    """What ``aiouws tap load`` was asked to do besides copying rows."""

    append: bool = False
    replace: bool = False
    primary_key: str | None = None
    #: (ra, dec) column names in degrees: a pg_sphere GiST index on their spoint.
    position: tuple[str, str] | None = None
    #: Curated metadata (a TOML file) over what the file headers say.
    metadata: TableMetadata | None = None
    format_name: str | None = None
    batch_rows: int = 50_000
    infer_rows: int = 10_000


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load did."""

    loaded: int
    total: int
    files: int
    #: GRANTs the current user may not run (see tapschema.publish).
    missing_grants: list[str] = field(default_factory=list)


async def load_files(
    conn: Connection,
    paths: Sequence[Path],
    qualified_table: str,
    options: LoadOptions,
) -> LoadReport:
    """Load ``paths`` (one schema) into ``schema.table`` and publish it.

    TAP_SCHEMA must be installed (:func:`tapschema.install`).

    Raises
    ------
    LoadError
        A file is bad (unreadable, truncated, a value of the wrong type), the
        files' columns differ from each other or from the table appended to,
        the table exists and neither append nor replace is set, a key or
        position column is unknown, the primary key is not unique, a position
        is not one (a dec outside -90..90, a NaN or infinite coordinate: see
        :mod:`.positions`), pg_sphere is missing for a position index. Nothing
        has changed then.
    """
    schema, table = _split(qualified_table)
    if options.append and options.replace:
        raise LoadError("--append and --replace exclude each other")
    opened = [open_source(p, options.format_name, options.infer_rows) for p in paths]
    sources, columns = _common_columns(opened)
    try:
        return await _load(conn, sources, columns, schema, table, options)
    except asyncpg.PostgresError as exc:  # not the files': privileges, locks...
        raise LoadError(f"cannot load {qualified_table}: {exc}") from exc


async def _load(
    conn: Connection,
    sources: list[Source],
    columns: list[tuple[str, str]],
    schema: str,
    table: str,
    options: LoadOptions,
) -> LoadReport:
    qualified_table = f"{schema}.{table}"
    async with conn.transaction():
        exists = await _exists(conn, schema, table)
        if exists and not (options.append or options.replace):
            raise LoadError(
                f"table {qualified_table} exists: --append to add rows, "
                "--replace to load it anew"
            )
        base = await published_metadata(conn, qualified_table, columns)
        if options.append and exists:
            what = f"appending {sources[0].path} to {qualified_table}: the file"
            await _check_appendable(conn, schema, table, columns, options, what)
            target = table
        else:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
            target = f"{table[:40]}_load_{secrets.token_hex(4)}"
            await conn.execute(_create_sql(schema, target, columns))
        loaded = 0
        for source in sources:
            loaded += await copy_source(
                conn,
                source,
                schema,
                target,
                columns,
                batch_rows=options.batch_rows,
                # A table created in this transaction (not one appended to).
                freeze=target != table,
            )
        if target != table:
            await _index(conn, (schema, target, qualified_table), columns, options)
            if exists:
                await _drop(conn, schema, table)
            await _rename(conn, schema, target, table)
        await conn.execute(f"ANALYZE {_quote(schema)}.{_quote(table)}")
        total: int = loaded
        if target == table:  # appended: count the whole table
            total = await conn.fetchval(
                f"SELECT count(*) FROM {_quote(schema)}.{_quote(table)}"
            )
        headers = header_metadata(sources[0].columns, sources[0].description)
        metadata = merge_metadata(base, headers, options.metadata)
        missing = await tapschema.publish(conn, qualified_table, metadata)
    return LoadReport(loaded, total, len(sources), missing)


def _split(qualified_table: str) -> tuple[str, str]:
    schema, dot, table = qualified_table.partition(".")
    if not dot or not schema or not table or "." in table:
        raise LoadError(f"table name {qualified_table!r} must be schema.table")
    if schema.lower() in _RESERVED_SCHEMAS or schema.lower().startswith("pg_"):
        raise LoadError(f"schema {schema!r} is the service's or PostgreSQL's own")
    return schema, table


#: Schemas no catalogue is loaded into: TAP's, the job store's, PostgreSQL's.
_RESERVED_SCHEMAS = frozenset({"tap_schema", "tap_upload", "uws", "information_schema"})


def _common_columns(
    opened: Sequence[Source],
) -> tuple[list[Source], list[tuple[str, str]]]:
    """The sources with normalised column names, and the ``(name, PostgreSQL
    type)`` pairs they all share."""
    sources: list[Source] = []
    first: list[tuple[str, str]] = []
    for index, source in enumerate(opened):
        source = replace(
            source, columns=normalise_names(source.columns, str(source.path))
        )
        try:
            pairs = [(c.name, pg_type(c)) for c in source.columns]
        except LoadError as exc:
            raise LoadError(f"{source.path}: {exc}") from exc
        if not sources:
            first = pairs
        else:
            check_same_columns(first, pairs, f"{source.path} (file {index + 1})")
        sources.append(source)
    return sources, first


async def _exists(conn: Connection, schema: str, table: str) -> bool:
    oid = await conn.fetchval(
        "SELECT to_regclass($1)", f"{_quote(schema)}.{_quote(table)}"
    )
    return oid is not None


_TABLE_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, NULL) AS type
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


async def _check_appendable(
    conn: Connection,
    schema: str,
    table: str,
    columns: list[tuple[str, str]],
    options: LoadOptions,
    what: str,
) -> None:
    if options.primary_key or options.position:
        raise LoadError(
            "--append keeps the table's key and indexes: "
            "--primary-key and --position are for new or replaced tables"
        )
    rows = await conn.fetch(_TABLE_COLUMNS, f"{_quote(schema)}.{_quote(table)}")
    existing = [(r["attname"], r["type"]) for r in rows]
    check_same_columns(existing, columns, what)


def _create_sql(schema: str, table: str, columns: list[tuple[str, str]]) -> str:
    body = ", ".join(f"{_quote(name)} {kind}" for name, kind in columns)
    return f"CREATE TABLE {_quote(schema)}.{_quote(table)} ({body})"


async def _index(
    conn: Connection,
    staging: tuple[str, str, str],
    columns: list[tuple[str, str]],
    options: LoadOptions,
) -> None:
    """Primary key and position index of the staging table (named after it):
    ``staging`` is (schema, staging table, the table's name for messages)."""
    schema, table, shown = staging
    types = dict(columns)
    names = set(types)
    qualified = f"{_quote(schema)}.{_quote(table)}"
    # As the demo catalogue's load: index builds sort in memory, not on disk.
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    key = options.primary_key
    if key is not None:
        _known(key, names, "--primary-key")
        try:
            await conn.execute(
                f"ALTER TABLE {qualified} ADD PRIMARY KEY ({_quote(key)})"
            )
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise LoadError(
                f"cannot make {key} the primary key: {exc.detail or exc}"
            ) from exc
    if options.position is not None:
        ra, dec = options.position
        for name in (ra, dec):
            _known(name, names, "--position")
            if types[name] not in ("double precision", "real"):
                raise LoadError(
                    f"--position: column {name!r} is {types[name]}, not a number"
                    " of degrees (double or float)"
                )
        # Before the index: pg_sphere would wrap a dec of 100 into another point.
        await check_positions(conn, schema, table, shown, options.position)
        await _require_pg_sphere(conn)
        # The expression the ADQL translator writes for POINT(ra, dec), so
        # CONTAINS(POINT(ra, dec), CIRCLE(...)) = 1 runs on this index.
        await conn.execute(
            f"CREATE INDEX {_quote(table + '_pos_idx')} ON {qualified}"
            f" USING gist (spoint(radians({_quote(ra)}), radians({_quote(dec)})))"
        )


def _known(name: str, names: set[str], option: str) -> None:
    if name not in names:
        raise LoadError(
            f"{option}: no column {name!r} (columns: {', '.join(sorted(names))})"
        )


async def _require_pg_sphere(conn: Connection) -> None:
    from taprunner.schema.pgsphere import ensure_pg_sphere

    sphere = await ensure_pg_sphere(conn)
    if not sphere.geometry:
        raise LoadError(f"--position needs pg_sphere: {sphere.problem}")


async def _drop(conn: Connection, schema: str, table: str) -> None:
    try:
        await conn.execute(f"DROP TABLE {_quote(schema)}.{_quote(table)}")
    except asyncpg.DependentObjectsStillExistError as exc:
        raise LoadError(
            f"cannot replace {schema}.{table}: {exc} ({exc.detail}); "
            "drop or change those first"
        ) from exc


async def _rename(conn: Connection, schema: str, staging: str, table: str) -> None:
    """Rename the staging table and its indexes (``staging_*`` -> ``table_*``)."""
    indexes = await conn.fetch(
        "SELECT indexrelid::regclass::text AS name, c.relname FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE indrelid = to_regclass($1)",
        f"{_quote(schema)}.{_quote(staging)}",
    )
    await conn.execute(
        f"ALTER TABLE {_quote(schema)}.{_quote(staging)} RENAME TO {_quote(table)}"
    )
    for index in indexes:
        name = table + index["relname"][len(staging) :]
        await conn.execute(
            f"ALTER INDEX {_quote(schema)}.{_quote(index['relname'])}"
            f" RENAME TO {_quote(name[:63])}"
        )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

"""Reading TAP_SCHEMA back: the published tables as the ADQL translator's catalogue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from taprunner.adql.sqltext import quote_identifier

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "ColumnInfo",
    "Connection",
    "ForeignKeyInfo",
    "TableInfo",
    "NO_GEOMETRY",
    "TapCatalog",
    "database_name",
    "load_tables",
]

Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)
"""A plain connection or one acquired from a pool: every function accepts both."""


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
    nrows: int | None = None
    """The table's rows when published (VODataService ``nrows``), if known."""


async def load_tables(conn: Connection) -> tuple[TableInfo, ...]:
    """Read every published table with its columns and foreign keys.

    Tables are ordered by schema_index, schema_name, table_index, table_name;
    columns by column_index.
    """
    tables = await conn.fetch(
        "SELECT t.schema_name, t.table_name, t.table_type, t.utype, t.description,"
        " t.nrows"
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
            nrows=row["nrows"],
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


def _name_parts(name: str) -> tuple[str, ...]:
    """The parts of an ADQL (or TAP_SCHEMA) name as the database spells them.

    Delimited parts keep their case (quotes removed), regular parts fold to
    lowercase, as PostgreSQL folds unquoted names.
    """
    return tuple(
        p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
        for p in _NAME_PART.findall(name)
    )


#: What a client is told when geometry is off (the server's log says more).
NO_GEOMETRY = "ADQL geometry is off on this service: its database lacks pg_sphere"


@dataclass(frozen=True, slots=True)
class TapCatalog:
    """The published tables as the ADQL translator's catalogue.

    Table names are ADQL names: regular identifiers match case-insensitively,
    delimited ones (``"Odd"``) exactly, each compared with the relation the
    TAP_SCHEMA name denotes. An unqualified table name resolves only if exactly
    one schema holds a table of that name. :meth:`sql_name` gives the emitter the
    checked relation, schema-qualified; :meth:`columns_of` gives column names as
    spelt in the database.
    """

    tables: tuple[TableInfo, ...]
    no_geometry: str | None = None
    """Why ADQL geometry cannot run in this database (it lacks pg_sphere), or None."""
    _by_name: Mapping[tuple[str, ...], TableInfo] = field(
        init=False, repr=False, compare=False
    )
    _by_short_name: Mapping[str, tuple[TableInfo, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_name: dict[tuple[str, ...], TableInfo] = {}
        by_short: dict[str, list[TableInfo]] = {}
        for table in self.tables:
            parts = _name_parts(table.name)
            by_name[parts] = table
            by_short.setdefault(parts[-1], []).append(table)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(
            self, "_by_short_name", {k: tuple(v) for k, v in by_short.items()}
        )

    @classmethod
    async def load(cls, conn: Connection) -> TapCatalog:
        """Build the catalogue from TAP_SCHEMA, noting whether pg_sphere is there."""
        sphere = await conn.fetchval("SELECT to_regtype('spoint') IS NOT NULL")
        return cls(await load_tables(conn), None if sphere else NO_GEOMETRY)

    def geometry_off(self) -> str | None:
        """Why the geometry functions cannot run here, None if they can."""
        return self.no_geometry

    def table(self, table: str) -> TableInfo | None:
        """Return the published table named ``table`` (qualified or unique)."""
        parts = _name_parts(table)
        if len(parts) != 1:
            return self._by_name.get(parts)
        candidates = self._by_short_name.get(parts[0], ())
        return candidates[0] if len(candidates) == 1 else None

    def sql_name(self, table: str) -> str | None:
        """The schema-qualified, quoted SQL naming the published table ``table``.

        Emitted instead of the name the client wrote, so the query reads exactly
        the relation that was checked (never one found through search_path).
        """
        info = self.table(table)
        if info is None:
            return None
        return ".".join(quote_identifier(p) for p in _name_parts(info.name))

    def columns_of(self, table: str) -> Sequence[str] | None:
        """Column names of ``table`` in column_index order, or None if unknown."""
        info = self.table(table)
        if info is None:
            return None
        return tuple(database_name(c.name) for c in info.columns)

    def column_unit(self, table: str, column: str) -> str | None:
        """The unit TAP_SCHEMA gives ``column`` of ``table`` (for IN_UNIT)."""
        info = self.column_info(table, column)
        return info.unit or None if info is not None else None

    def column_datatype(self, table: str, column: str) -> str | None:
        """The datatype TAP_SCHEMA gives ``column`` of ``table`` (ROUND keeps
        integers exact)."""
        info = self.column_info(table, column)
        return info.datatype if info is not None else None

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

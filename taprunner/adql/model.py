"""Value types of the ADQL translator: its result, its error and its catalog port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class AdqlError(Exception):
    """The client's query is not acceptable ADQL; the message says what and where."""

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        if line is not None and column is not None and "line" not in message:
            message = f"{message} (at line {line}, column {column})"
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class AdqlSyntaxError(AdqlError):
    """The query breaks ADQL's grammar (not merely names something unknown).

    Its message starts with ``syntax error``; raised before any name is looked
    up, so an invalid query is never reported as naming an unknown table.
    """

    def __init__(
        self, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        if not message.startswith("syntax error"):
            message = f"syntax error: {message}"
        super().__init__(message, line, column)


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """One column of the translated query's result, as the client sees it."""

    name: str
    """Unique output name (duplicates get ``_2``, ``_3``... suffixes)."""
    table: str | None
    """Qualified source table when the column is a plain reference: regular
    names folded to lowercase, delimited ones kept quoted with their case."""
    column: str | None
    """Source column name when the column is a plain reference."""
    xtype: str | None
    """``point``/``circle``/``polygon`` for geometry (emitted as DALI float8[])."""


@dataclass(frozen=True, slots=True)
class Translation:
    """The PostgreSQL statement for an ADQL query, with its result metadata."""

    sql: str
    columns: tuple[OutputColumn, ...]
    tables: frozenset[str]


class Catalog(Protocol):
    """The tables and columns a query may reference (TAP_SCHEMA provides them)."""

    def columns_of(self, table: str) -> Sequence[str] | None:
        """Columns of ``table``, None if unknown.

        ``table`` is qualified or not; regular parts come lowercase, delimited
        parts keep their double quotes and case.
        """
        ...


@runtime_checkable
class NamingCatalog(Catalog, Protocol):
    """A catalog some of whose tables live under another name in the database.

    The emitter asks :meth:`sql_name` for every catalog table it emits; a plain
    :class:`Catalog` (without the method) keeps the ADQL name, as does a None
    answer. TAP uploads use it to map ``TAP_UPLOAD.t`` to a temporary table.
    """

    def sql_name(self, table: str) -> str | None:
        """The SQL naming ``table`` (spelt as for :meth:`columns_of`), None to keep it.

        The answer is emitted verbatim, so it must already be quoted as needed.
        """
        ...


@runtime_checkable
class GeometryCatalog(Catalog, Protocol):
    """A catalog that can say its database cannot run ADQL geometry (no pg_sphere).

    The emitter then refuses the geometry functions with that reason; a plain
    :class:`Catalog` (without the method) has geometry.
    """

    def geometry_off(self) -> str | None:
        """Why the geometry functions cannot run here (for the client), else None."""
        ...


@runtime_checkable
class GeometryColumnsCatalog(Catalog, Protocol):
    """A catalog some of whose columns hold pg_sphere geometry (TAP uploads).

    The emitter asks :meth:`column_xtype` for every column of a catalog table,
    so that the geometry functions take such a column and a result gives it as
    a DALI array; a plain :class:`Catalog` has no geometry columns.
    """

    def column_xtype(self, table: str, column: str) -> str | None:
        """``point``/``circle``/``polygon`` for a geometry column, else None."""
        ...


@runtime_checkable
class UnitCatalog(Catalog, Protocol):
    """A catalog that knows the units of its columns (TAP_SCHEMA's), for IN_UNIT."""

    def column_unit(self, table: str, column: str) -> str | None:
        """The VOUnit of ``column`` of ``table`` (spelt as for :meth:`columns_of`
        and as the catalogue gave the column), None if it has none."""
        ...


@runtime_checkable
class DatatypeCatalog(Catalog, Protocol):
    """A catalog that knows its columns' TAP_SCHEMA datatypes (``long``, ``int``...)."""

    def column_datatype(self, table: str, column: str) -> str | None:
        """The TAP_SCHEMA datatype of ``column`` of ``table``, None if unknown."""
        ...


class StaticCatalog:
    """A catalog from a fixed mapping ``{"schema.table": [column, ...]}``.

    Keys are matched case-insensitively; column names are kept as given (a
    name that is not plain lowercase is a delimited identifier in the database).
    """

    def __init__(
        self,
        mapping: Mapping[str, Sequence[str]],
        units: Mapping[str, Mapping[str, str]] | None = None,
        datatypes: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._tables = {name.lower(): tuple(cols) for name, cols in mapping.items()}
        self._units = {name.lower(): dict(u) for name, u in (units or {}).items()}
        self._types = {name.lower(): dict(t) for name, t in (datatypes or {}).items()}

    def column_datatype(self, table: str, column: str) -> str | None:
        """The datatype ``datatypes`` gave ``column`` of ``table``, None if none."""
        return self._types.get(table.lower(), {}).get(column)

    def column_unit(self, table: str, column: str) -> str | None:
        """The unit ``units`` gave ``column`` of ``table``, None if none."""
        return self._units.get(table.lower(), {}).get(column)

    def columns_of(self, table: str) -> Sequence[str] | None:
        """Columns of ``table``, None if the mapping does not hold it."""
        return self._tables.get(table.lower())

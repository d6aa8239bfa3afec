"""Table metadata files: descriptions, units and UCDs for ``aiouws tap publish``.

A TOML file with top-level ``description``, ``utype``, ``table_index``,
``schema_description`` and per column ``[columns.<name>]`` tables with
``description``, ``unit``, ``ucd``, ``utype``, ``principal`` and ``std``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ColumnMetadata",
    "TableMetadata",
    "TapSchemaError",
    "load_metadata",
    "parse_metadata",
]


class TapSchemaError(Exception):
    """A table cannot be published or unpublished, or metadata is invalid."""


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

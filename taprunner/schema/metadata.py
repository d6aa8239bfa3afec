"""Metadata files: what ``aiouws tap publish`` adds to the PostgreSQL catalog.

One TOML file describes one table (a *table file*: table keys at the top, one
``[columns.NAME]`` table per column) or a schema and several of its tables (a
*schema file*: ``[schema]`` and one ``[tables.NAME]`` table per table, each with
the keys of a table file). README.md, "Publishing your own tables", documents
every key; :mod:`.describe` writes the same format back.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "VOTABLE_DATATYPES",
    "ColumnMetadata",
    "ForeignKeyMetadata",
    "MetadataError",
    "SchemaMetadata",
    "TableMetadata",
    "TapSchemaError",
    "load_metadata",
    "parse_metadata",
    "parse_metadata_file",
    "read_metadata_file",
    "toml_key",
]


class TapSchemaError(Exception):
    """A table cannot be published or unpublished, or metadata is invalid."""


class MetadataError(TapSchemaError):
    """A metadata file is invalid; the message names the file, the key and what
    is wrong (``m.toml: columns.ra.unit: must be a string, not an integer``)."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(
            f"{source}: {key}: {problem}" if key else f"{source}: {problem}"
        )
        self.source = source
        self.key = key
        self.problem = problem

    def within(self, table: str) -> MetadataError:
        """The same error about table ``table`` of a schema file (the key
        prefixed with ``tables.NAME.``)."""
        key = f"tables.{toml_key(table)}" + (f".{self.key}" if self.key else "")
        return MetadataError(self.source, key, self.problem)


#: The VOTable 1.5 primitive datatypes (TAP_SCHEMA.columns.datatype).
VOTABLE_DATATYPES = frozenset(
    {
        "boolean", "bit", "unsignedByte", "short", "int", "long", "char",
        "unicodeChar", "float", "double", "floatComplex", "doubleComplex",
    }
)  # fmt: skip
#: A VOTable arraysize: ``2``, ``3x3``, ``*``, ``10*``, ``2x*``.
_ARRAYSIZE = re.compile(r"(?:[0-9]+x)*(?:[0-9]+|[0-9]*\*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMetadata:
    """Curated metadata for one column (by its PostgreSQL name).

    ``None`` in ``indexed``, ``column_index``, ``datatype``, ``arraysize`` and
    ``xtype`` means: derived from PostgreSQL at publication. An empty
    ``arraysize`` or ``xtype`` overrides a derived one with none (a scalar, no
    xtype).
    """

    name: str
    description: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    principal: bool = True
    std: bool = False
    indexed: bool | None = None
    column_index: int | None = None
    datatype: str | None = None
    arraysize: str | None = None
    xtype: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForeignKeyMetadata:
    """The description of a foreign key, by its PostgreSQL constraint name."""

    name: str
    description: str | None = None
    utype: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TableMetadata:
    """Curated metadata for one table; the PostgreSQL catalog supplies the rest.

    The ``schema_*`` values update the schema's row when given (a schema value
    left out keeps its earlier one). ``nrows`` overrides the row count counted
    at publication (``None``: count it). ``source`` names where the metadata
    came from, for error messages.
    """

    description: str | None = None
    utype: str | None = None
    table_index: int | None = None
    schema_description: str | None = None
    columns: tuple[ColumnMetadata, ...] = ()
    schema_utype: str | None = None
    schema_index: int | None = None
    nrows: int | None = None
    foreign_keys: tuple[ForeignKeyMetadata, ...] = ()
    source: str = "metadata"

    def column(self, name: str) -> ColumnMetadata:
        """Return the metadata of column ``name`` (defaults if not given)."""
        for column in self.columns:
            if column.name == name:
                return column
        return ColumnMetadata(name=name)

    def foreign_key(self, name: str) -> ForeignKeyMetadata:
        """Return the metadata of foreign key ``name`` (empty if not given)."""
        for key in self.foreign_keys:
            if key.name == name:
                return key
        return ForeignKeyMetadata(name=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaMetadata:
    """A schema file: the schema's metadata and its tables' (by PostgreSQL name)."""

    description: str | None = None
    utype: str | None = None
    schema_index: int | None = None
    tables: Mapping[str, TableMetadata] = field(default_factory=dict)
    source: str = "metadata"

    def table(self, name: str) -> TableMetadata:
        """The metadata of table ``name``, with the schema's.

        Raises
        ------
        MetadataError
            If the file does not describe that table.
        """
        if name not in self.tables:
            raise MetadataError(
                self.source, f"tables.{toml_key(name)}", "no such table in this file"
            )
        return self.tables[name]


# ---------------------------------------------------------------- the keys

_Spec = Mapping[str, type]
_SCHEMA_KEYS: _Spec = {"description": str, "utype": str, "schema_index": int}
_TABLE_KEYS: _Spec = {
    "description": str,
    "utype": str,
    "table_index": int,
    "nrows": int,
    "columns": dict,
    "foreign_keys": dict,
}
#: A table file has its schema's keys too; ``schema_description`` is the older
#: spelling of ``[schema] description``.
_TABLE_FILE_KEYS: _Spec = {**_TABLE_KEYS, "schema": dict, "schema_description": str}
_SCHEMA_FILE_KEYS: _Spec = {"schema": dict, "tables": dict}
_COLUMN_KEYS: _Spec = {
    "description": str,
    "unit": str,
    "ucd": str,
    "utype": str,
    "principal": bool,
    "std": bool,
    "indexed": bool,
    "column_index": int,
    "datatype": str,
    "arraysize": str,
    "xtype": str,
}
_FOREIGN_KEY_KEYS: _Spec = {"description": str, "utype": str}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", dict: "a table"}


def read_metadata_file(path: Path | str) -> TableMetadata | SchemaMetadata:
    """Read a table file or a schema file (a schema file has ``[tables.NAME]``).

    Raises
    ------
    MetadataError
        If the file cannot be read, is not TOML, or has unknown keys, values of
        the wrong type or invalid values (datatype, arraysize).
    """
    source = str(path)
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except OSError as exc:
        raise MetadataError(source, "", f"cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MetadataError(source, "", f"not valid TOML: {exc}") from exc
    return parse_metadata_file(data, source=source)


def load_metadata(path: Path | str) -> TableMetadata:
    """Read a table file (see :func:`read_metadata_file`).

    Raises
    ------
    MetadataError
        As :func:`read_metadata_file`, and for a schema file.
    """
    metadata = read_metadata_file(path)
    if isinstance(metadata, SchemaMetadata):
        raise MetadataError(
            str(path), "tables", "a schema file: publish the schema, not one table"
        )
    return metadata


def parse_metadata_file(
    data: Mapping[str, object], *, source: str = "metadata"
) -> TableMetadata | SchemaMetadata:
    """Build the metadata of a parsed TOML document: a schema file if it has
    ``tables``, else a table file."""
    if "tables" not in data:
        return parse_metadata(data, source=source)
    values = _values(data, _SCHEMA_FILE_KEYS, source, "")
    schema = _schema(_mapping(values, "schema"), source)
    tables = {}
    for name, value in _mapping(values, "tables").items():
        prefix = f"tables.{toml_key(name)}."
        table = _table(_values(value, _TABLE_KEYS, source, prefix), source, prefix)
        tables[name] = _with_schema(table, schema)
    return replace(schema, tables=tables)


def parse_metadata(
    data: Mapping[str, object], *, source: str = "metadata"
) -> TableMetadata:
    """Build :class:`TableMetadata` from a parsed table file."""
    values = _values(data, _TABLE_FILE_KEYS, source, "")
    schema = _schema(_mapping(values, "schema"), source)
    older = _text(values, "schema_description")
    if "schema_description" in values:
        if schema.description is not None:
            raise MetadataError(
                source,
                "schema_description",
                "the schema's description is given twice (also in [schema])",
            )
        schema = replace(schema, description=older)
    return _with_schema(_table(values, source, ""), schema)


def _schema(values: Mapping[str, object], source: str) -> SchemaMetadata:
    checked = _values(values, _SCHEMA_KEYS, source, "schema.")
    return SchemaMetadata(
        description=_text(checked, "description"),
        utype=_text(checked, "utype"),
        schema_index=_int(checked, "schema_index"),
        source=source,
    )


def _with_schema(table: TableMetadata, schema: SchemaMetadata) -> TableMetadata:
    return replace(
        table,
        schema_description=schema.description,
        schema_utype=schema.utype,
        schema_index=schema.schema_index,
    )


def _table(values: Mapping[str, object], source: str, prefix: str) -> TableMetadata:
    """A table's metadata from its checked keys (``prefix``: where they are)."""
    columns = []
    for column, value in _mapping(values, "columns").items():
        where = f"{prefix}columns.{toml_key(column)}."
        checked = _values(value, _COLUMN_KEYS, source, where)
        columns.append(_column(column, checked, source, where))
    keys = []
    for key, value in _mapping(values, "foreign_keys").items():
        where = f"{prefix}foreign_keys.{toml_key(key)}."
        checked = _values(value, _FOREIGN_KEY_KEYS, source, where)
        keys.append(
            ForeignKeyMetadata(
                name=key,
                description=_text(checked, "description"),
                utype=_text(checked, "utype"),
            )
        )
    nrows = _int(values, "nrows")
    if nrows is not None and nrows < 0:
        raise MetadataError(source, prefix + "nrows", "must not be negative")
    return TableMetadata(
        description=_text(values, "description"),
        utype=_text(values, "utype"),
        table_index=_int(values, "table_index"),
        nrows=nrows,
        columns=tuple(columns),
        foreign_keys=tuple(keys),
        source=source,
    )


def _column(
    name: str, values: Mapping[str, object], source: str, where: str
) -> ColumnMetadata:
    datatype = _string(values, "datatype")
    if datatype is not None and datatype not in VOTABLE_DATATYPES:
        raise MetadataError(
            source,
            where + "datatype",
            f"{datatype!r} is no VOTable datatype (one of "
            + ", ".join(sorted(VOTABLE_DATATYPES))
            + ")",
        )
    arraysize = _string(values, "arraysize")
    if arraysize and not _ARRAYSIZE.fullmatch(arraysize):
        raise MetadataError(
            source,
            where + "arraysize",
            f"{arraysize!r} is no VOTable arraysize (such as 2, 3x3, *, 10*;"
            ' "" for a scalar)',
        )
    principal = _flag(values, "principal")
    return ColumnMetadata(
        name=name,
        description=_text(values, "description"),
        unit=_text(values, "unit"),
        ucd=_text(values, "ucd"),
        utype=_text(values, "utype"),
        principal=True if principal is None else principal,
        std=bool(_flag(values, "std")),
        indexed=_flag(values, "indexed"),
        column_index=_int(values, "column_index"),
        datatype=datatype,
        arraysize=arraysize,
        xtype=_string(values, "xtype"),
    )


# ---------------------------------------------------------------- checking


def _values(data: object, spec: _Spec, source: str, prefix: str) -> dict[str, object]:
    """The keys of ``data`` (a TOML table at ``prefix``), checked against ``spec``."""
    if not isinstance(data, Mapping):
        problem = f"must be a table, not {_type_name(data)}"
        raise MetadataError(source, prefix.rstrip("."), problem)
    for key, value in data.items():
        wanted = spec.get(key)
        if wanted is None:
            raise MetadataError(
                source,
                prefix + toml_key(key),
                "unknown key (known here: " + ", ".join(spec) + ")",
            )
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise MetadataError(
                source,
                prefix + toml_key(key),
                f"must be {_TYPE_NAMES[wanted]}, not {_type_name(value)}",
            )
    return dict(data)


def _mapping(values: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = values.get(key, {})
    return value if isinstance(value, Mapping) else {}


def _text(values: Mapping[str, object], key: str) -> str | None:
    """A string value; an empty one is none."""
    return _string(values, key) or None


def _string(values: Mapping[str, object], key: str) -> str | None:
    value = values.get(key)
    return value if isinstance(value, str) else None


def _int(values: Mapping[str, object], key: str) -> int | None:
    value = values.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(values: Mapping[str, object], key: str) -> bool | None:
    value = values.get(key)
    return value if isinstance(value, bool) else None


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__  # dates and times


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(name: str) -> str:
    """``name`` as a TOML key: bare if it can be, else quoted."""
    if _BARE_KEY.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

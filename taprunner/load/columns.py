"""A loaded file's columns in VOTable terms, their PostgreSQL types and metadata.

Every reader describes its columns as VOTable FIELDs (datatype, arraysize,
xtype) with the header's unit, UCD, utype and description. :func:`pg_type` maps
them to PostgreSQL the way the output side maps back
(:func:`taprunner.schema.tapschema.votable_type`): a loaded ``double`` is
published and returned as ``double`` again, ``unsignedByte`` (no PostgreSQL
byte type) as ``short`` and ``bit`` as ``boolean``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from taprunner.schema.metadata import ColumnMetadata, TableMetadata, TapSchemaError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "LoadError",
    "SourceColumn",
    "check_same_columns",
    "header_metadata",
    "normalise_names",
    "numpy_datatype",
    "pg_type",
]


class LoadError(TapSchemaError):
    """A file cannot be loaded: unreadable, truncated, wrong types, mixed schemas."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceColumn:
    """One column of a file: its VOTable type and the metadata its header gives."""

    name: str
    datatype: str
    #: None for a scalar; ``*`` (or a size) for strings and arrays.
    arraysize: str | None = None
    xtype: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    description: str | None = None


#: VOTable datatype -> PostgreSQL type: the inverse of tapschema.votable_type.
_SCALARS = {
    "boolean": "boolean",
    "bit": "boolean",
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
}
_STRINGS = frozenset({"char", "unicodeChar"})
_TIMESTAMP = "timestamp"


def pg_type(column: SourceColumn) -> str:
    """The PostgreSQL type of ``column``: scalars and their arrays, text, timestamps.

    Raises
    ------
    LoadError
        For types PostgreSQL (or the output side) has no counterpart of:
        complex numbers, arrays of strings.
    """
    if column.datatype in _STRINGS:
        if column.arraysize is not None and "x" in column.arraysize:
            raise LoadError(
                f"column {column.name!r}: arrays of strings are not supported"
            )
        return _TIMESTAMP if (column.xtype or "").lower() == _TIMESTAMP else "text"
    scalar = _SCALARS.get(column.datatype)
    if scalar is None:
        raise LoadError(
            f"column {column.name!r}: datatype {column.datatype} is not supported"
        )
    return scalar if column.arraysize in (None, "1") else scalar + "[]"


#: numpy kind+size (after FITS scaling, astropy's columns) -> VOTable datatype.
_NUMPY = {
    "b1": "boolean",
    "i1": "short",
    "u1": "unsignedByte",
    "i2": "short",
    "u2": "int",
    "i4": "int",
    "u4": "long",
    "i8": "long",
    "u8": "long",
    "f2": "float",
    "f4": "float",
    "f8": "double",
    "f16": "double",  # long double (ECSV float128), kept as double precision
}


def numpy_datatype(name: str, dtype: np.dtype[np.generic]) -> tuple[str, str | None]:
    """VOTable ``(datatype, arraysize)`` of a numpy column (subarrays: ``*``)."""
    base = dtype.subdtype[0] if dtype.subdtype is not None else dtype
    array = "*" if dtype.subdtype is not None else None
    if base.kind in "US":
        if array is not None:
            raise LoadError(f"column {name!r}: arrays of strings are not supported")
        return "unicodeChar", "*"
    datatype = _NUMPY.get(f"{base.kind}{base.itemsize}")
    if datatype is None:
        raise LoadError(f"column {name!r}: numpy type {base} is not supported")
    return datatype, array


_REGULAR = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_MAX_IDENTIFIER_BYTES = 63


def normalise_names(
    columns: Sequence[SourceColumn], source: str
) -> tuple[SourceColumn, ...]:
    """Columns with regular names in lowercase (``RA`` -> ``ra``: ADQL finds it
    unquoted); other names are kept as written (ADQL quotes them).

    Raises
    ------
    LoadError
        No columns, an empty or over-long name, or two columns of one name.
    """
    if not columns:
        raise LoadError(f"{source}: no columns")
    seen: set[str] = set()
    result = []
    for column in columns:
        name = column.name.lower() if _REGULAR.fullmatch(column.name) else column.name
        if not name.strip() or "\x00" in name:
            raise LoadError(f"{source}: an empty or invalid column name")
        if len(name.encode()) > _MAX_IDENTIFIER_BYTES:
            raise LoadError(f"{source}: column name {name!r} is over 63 bytes")
        if name in seen:
            raise LoadError(f"{source}: column {name!r} appears twice")
        seen.add(name)
        result.append(replace(column, name=name))
    return tuple(result)


def check_same_columns(
    expected: Sequence[tuple[str, str]], found: Sequence[tuple[str, str]], what: str
) -> None:
    """Refuse ``what`` unless its ``(name, pg type)`` pairs equal ``expected``.

    Raises
    ------
    LoadError
        Naming the first difference (mixed schemas).
    """
    if list(expected) == list(found):
        return
    names = [n for n, _ in expected]
    if names != [n for n, _ in found]:
        raise LoadError(
            f"{what} has the columns {', '.join(n for n, _ in found)}, "
            f"not {', '.join(names)}: all files of one table need the same columns"
        )
    for (name, want), (_, have) in zip(expected, found, strict=True):
        if want != have:
            raise LoadError(
                f"{what}: column {name!r} is {have}, not {want}: "
                "all files of one table need the same column types"
            )


def header_metadata(
    columns: Sequence[SourceColumn], description: str | None
) -> TableMetadata:
    """The metadata the file headers give, as ``aiouws tap publish`` takes it."""
    return TableMetadata(
        description=description,
        columns=tuple(
            ColumnMetadata(
                name=c.name,
                description=c.description,
                unit=c.unit,
                ucd=c.ucd,
                utype=c.utype,
            )
            for c in columns
        ),
    )

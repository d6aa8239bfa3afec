"""Parsing an uploaded VOTable (with astropy) into column names, SQL types and rows.

:func:`parse_votable` is CPU-bound: the loader (:mod:`.uploads`) runs it in a
worker thread. Every problem with the client's document is a TapUsageError.

What a query gives back of an uploaded column keeps its FIELD where the values
allow: a ``char`` column whose values are all ASCII stays ``char`` (else
``unicodeChar``), and a DALI geometry (``double`` array with xtype ``point``,
``circle`` or ``polygon``) is marked for the loader, which makes it a pg_sphere
value the ADQL geometry functions take.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from taprunner.adql.dalicast import range_problem
from taprunner.errors import TapUsageError

__all__ = [
    "ARRAY_TYPES",
    "SCALAR_TYPES",
    "TEXT_TYPES",
    "ParsedUpload",
    "check_geometry",
    "check_names",
    "geometry_xtype",
    "parse_votable",
    "timestamp",
]

SCALAR_TYPES = {
    "boolean": "boolean", "bit": "boolean", "unsignedByte": "smallint",
    "short": "smallint", "int": "integer", "long": "bigint", "float": "real",
    "double": "double precision",
}  # fmt: skip
ARRAY_TYPES = {
    "boolean": "boolean[]", "bit": "boolean[]", "unsignedByte": "integer[]",
    "short": "integer[]", "int": "integer[]", "long": "bigint[]",
    "float": "double precision[]", "double": "double precision[]",
}  # fmt: skip
TEXT_TYPES = frozenset({"char", "unicodeChar"})
#: DALI geometry xtypes (double arrays) and the numbers of values they take:
#: the fixed size, or the least and a multiple (a polygon's vertex pairs).
GEOMETRY_SIZES = {"point": (2, 2), "circle": (3, 3), "polygon": (6, 2)}
_MAX_IDENTIFIER_BYTES = 63


@dataclass(frozen=True, slots=True)
class ParsedUpload:
    """An uploaded table as parsed: column names, SQL types and rows."""

    columns: tuple[str, ...]
    sql_types: tuple[str, ...]
    records: list[tuple[object, ...]]
    #: Per column: ``char`` for a char column of ASCII values (results keep it
    #: char), else None.
    kept_char: tuple[bool, ...] = ()
    #: Per column: the DALI geometry xtype (point, circle, polygon) of a
    #: double array column that holds one, else None.
    geometry: tuple[str | None, ...] = ()


def parse_votable(name: str, data: bytes, max_rows: int) -> ParsedUpload:
    """The table of VOTable ``data`` (upload ``name``), at most ``max_rows`` rows."""
    from astropy.io.votable import parse  # type: ignore[import-untyped]

    try:
        # a read function: astropy does not sniff it for compression (see
        # taprunner.load.expand; ``data`` is expanded already)
        table = parse(io.BytesIO(data).read, verify="ignore").get_first_table()
        array = table.array
    # astropy raises many unrelated types (ValueError, ExpatError, IndexError,
    # KeyError...) for bad input; the input is the client's, so any of them
    # means the same thing to the client.
    except Exception as exc:  # noqa: BLE001
        raise TapUsageError(f"upload {name!r} is not a valid VOTable: {exc}") from exc
    if len(array) > max_rows:
        raise TapUsageError(
            f"upload {name!r} has {len(array)} rows, more than the limit of {max_rows}"
        )
    columns = tuple(str(f.name) for f in table.fields)
    check_names(name, columns)
    types: list[str] = []
    values: list[list[object]] = []
    kept: list[bool] = []
    geometry: list[str | None] = []
    for field, key in zip(table.fields, array.dtype.names, strict=True):
        sql_type, column = _convert(name, field, array[key])
        types.append(sql_type)
        values.append(column)
        kept.append(sql_type == "text" and _ascii_char(field, column))
        geometry.append(_geometry(name, field, sql_type, column))
    records = list(zip(*values, strict=True)) if values else []
    return ParsedUpload(columns, tuple(types), records, tuple(kept), tuple(geometry))


def _ascii_char(field: Any, column: list[object]) -> bool:
    """A ``char`` FIELD whose values are all ASCII (VOTable 1.4's char)."""
    return str(field.datatype) == "char" and all(
        v is None or str(v).isascii() for v in column
    )


def _geometry(name: str, field: Any, sql_type: str, column: list[object]) -> str | None:
    """The DALI geometry xtype of a double array column, its values checked."""
    xtype = geometry_xtype(str(field.xtype or ""), sql_type)
    if xtype is not None:
        for row, value in enumerate(column, 1):
            check_geometry(name, str(field.name), xtype, value, row)
    return xtype


def geometry_xtype(xtype: str, sql_type: str) -> str | None:
    """The DALI geometry (point, circle, polygon) a column of FIELD ``xtype``
    and type ``sql_type`` holds, if any."""
    xtype = xtype.lower()
    if xtype not in GEOMETRY_SIZES or sql_type != "double precision[]":
        return None
    return xtype


def check_geometry(name: str, column: str, xtype: str, value: object, row: int) -> None:
    """Refuse a value of geometry column ``column`` (in data row ``row``, from
    1) of the wrong size, with NULLs, not finite, or out of range: a latitude
    beyond the poles, a circle's radius out of 0 to 90 degrees. pg_sphere
    would refuse some with a message naming no row, and silently make others
    something else (a point at latitude 100 the one at 80, 180 degrees on)."""
    if value is None:
        return
    where = f"upload {name!r}: column {column!r}: row {row}:"
    least, step = GEOMETRY_SIZES[xtype]
    size = len(value)  # type: ignore[arg-type]
    if size < least or size % step or (least == step and size != least):
        raise TapUsageError(
            f"{where} a {xtype} of {size}"
            " values (DALI: point 2, circle 3, polygon 6 or more, even)"
        )
    values: list[Any] = list(value)  # type: ignore[call-overload]
    if any(v is None for v in values):
        raise TapUsageError(f"{where} a {xtype} with NULL values")
    numbers = [float(v) for v in values]
    for v in numbers:
        if not math.isfinite(v):
            raise TapUsageError(f"{where} a {xtype} of a value not finite ({v})")
    problem = range_problem(xtype, numbers)
    if problem is not None:
        raise TapUsageError(f"{where} a {xtype}'s {problem}")


def check_names(name: str, columns: Sequence[str]) -> None:
    """Refuse no columns, or empty, invalid, over-long or repeated names."""
    if not columns:
        raise TapUsageError(f"upload {name!r} is not a valid VOTable: no FIELDs")
    seen: set[str] = set()
    for column in columns:
        if not column or "\x00" in column:
            raise TapUsageError(f"upload {name!r}: empty or invalid column name")
        if len(column.encode()) > _MAX_IDENTIFIER_BYTES:
            raise TapUsageError(
                f"upload {name!r}: column name {column!r} is longer "
                f"than {_MAX_IDENTIFIER_BYTES} bytes"
            )
        if column in seen:
            raise TapUsageError(f"upload {name!r}: column {column!r} appears twice")
        seen.add(column)


def _convert(name: str, field: Any, column: Any) -> tuple[str, list[object]]:
    """SQL type of ``field`` and its values as Python objects (None for null)."""
    datatype = str(field.datatype)
    mask = np.ma.getmaskarray(column)
    if datatype in TEXT_TYPES:
        if column.ndim > 1:
            raise TapUsageError(
                f"upload {name!r}: column {field.name!r}: arrays of "
                "strings are not supported"
            )
        texts = [
            None if m else _text(v)
            for v, m in zip(column.data.tolist(), mask, strict=True)
        ]
        if field.xtype == "timestamp":
            return "timestamptz", [timestamp(name, field.name, t) for t in texts]
        return "text", list(texts)
    if datatype not in SCALAR_TYPES:
        raise TapUsageError(
            f"upload {name!r}: column {field.name!r} has the "
            f"unsupported datatype {datatype}"
        )
    if column.dtype == object:  # variable-length arrays: one masked array per row
        return ARRAY_TYPES[datatype], [
            None if m else _array(v) for v, m in zip(column.data, mask, strict=True)
        ]
    if column.ndim > 1:  # fixed-size arrays, flattened
        # The element count, not -1: numpy cannot infer it for no rows.
        flat = column.reshape(len(column), int(np.prod(column.shape[1:])))
        return ARRAY_TYPES[datatype], [
            None if np.all(m) else _array(row)
            for row, m in zip(flat, np.ma.getmaskarray(flat), strict=True)
        ]
    values = column.data.tolist()
    return SCALAR_TYPES[datatype], [
        None if m else v for v, m in zip(values, mask.tolist(), strict=True)
    ]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _array(value: Any) -> list[object] | None:
    data = np.ma.asarray(value).ravel()
    if data.size == 0:
        return None
    mask = np.ma.getmaskarray(data).tolist()
    return [None if m else v for v, m in zip(data.data.tolist(), mask, strict=True)]


def timestamp(name: str, column: str, text: str | None) -> datetime | None:
    if text is None or not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TapUsageError(
            f"upload {name!r}: column {column!r}: {text!r} is not an ISO 8601 timestamp"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

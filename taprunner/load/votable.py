"""VOTable: the first TABLE, its FIELDs' unit, ucd, utype and DESCRIPTION.

TABLEDATA (:mod:`.tabledata`), BINARY and BINARY2 (:mod:`.binary`) are
streamed: memory stays one batch. The rare FITS serialisation is parsed whole by
astropy (its parser builds the table's arrays; there is no row iterator), so
such a VOTable costs about its decoded size in memory; only the COPY is batched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from taprunner.load.binary import stream_binary
from taprunner.load.columns import LoadError, SourceColumn
from taprunner.load.source import Batches, Source
from taprunner.load.tabledata import read_head, stream_rows

__all__ = ["open_votable"]


def open_votable(path: Path) -> Source:
    """The first table of the VOTable ``path`` (a :class:`Source` of batches)."""
    head = read_head(path)
    if head.serialisation in ("TABLEDATA", None):
        _check(head.columns)
        columns = tuple(head.columns)
        return Source(
            path=path,
            columns=columns,
            description=head.description,
            batches=lambda rows: stream_rows(path, head, rows),
        )
    if head.serialisation in ("BINARY", "BINARY2"):
        _check(head.columns)
        return Source(
            path=path,
            columns=tuple(head.columns),
            description=head.description,
            batches=lambda rows: stream_binary(path, head, rows),
        )
    return _parse_whole(path)


def _check(columns: list[SourceColumn] | tuple[SourceColumn, ...]) -> None:
    if not columns:
        raise LoadError("no TABLE with FIELDs")
    for column in columns:
        if column.datatype in ("floatComplex", "doubleComplex"):
            raise LoadError(
                f"column {column.name!r}: complex numbers are not supported"
            )


def _parse_whole(path: Path) -> Source:
    from astropy.io.votable import parse  # type: ignore[import-untyped]

    from taprunner.load.expand import xml_source

    with xml_source(path) as source:
        table = parse(source, verify="ignore").get_first_table()
    columns = tuple(
        SourceColumn(
            name=str(f.name),
            datatype=str(f.datatype),
            arraysize=_arraysize(f),
            xtype=f.xtype or None,
            unit=str(f.unit) if f.unit is not None else None,
            ucd=f.ucd or None,
            utype=f.utype or None,
            description=_text(f.description),
        )
        for f in table.fields
    )
    _check(columns)
    array = table.array
    return Source(
        path=path,
        columns=columns,
        description=_text(table.description),
        batches=lambda rows: _batches(array, columns, rows),
    )


def _arraysize(field: Any) -> str | None:
    if field.datatype in ("char", "unicodeChar"):
        size = str(field.arraysize or "1")
        # char arrays are strings; a 2-D char array is an array of strings
        return "*" if "x" not in size else size
    return None if field.arraysize in (None, "1") else str(field.arraysize)


def _text(value: object) -> str | None:
    return " ".join(str(value).split()) or None if value else None


def _batches(array: Any, columns: tuple[SourceColumn, ...], rows: int) -> Batches:
    for start in range(0, len(array), rows):
        part = array[start : start + rows]
        values = [
            _values(part[name], column)
            for name, column in zip(array.dtype.names, columns, strict=True)
        ]
        yield list(zip(*values, strict=True))


def _values(column: Any, field: SourceColumn) -> list[object]:
    mask: Any = np.ma.getmaskarray(column)
    data = np.ma.getdata(column)
    values: list[object]
    if field.datatype in ("char", "unicodeChar"):
        convert = _timestamp if (field.xtype or "").lower() == "timestamp" else _str
        values = [convert(v) for v in data.tolist()]
    elif data.dtype == object:  # variable-length arrays: one masked array each
        values = [_array(v) for v in data.tolist()]
    else:
        values = data.tolist()
    if mask.ndim > 1:  # an array value is NULL when all its elements are
        mask = mask.all(axis=tuple(range(1, mask.ndim)))
    for i in np.flatnonzero(mask).tolist():
        values[i] = None
    return values


def _str(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _timestamp(value: object) -> datetime | None:
    text = _str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError as exc:
        raise LoadError(f"not a DALI timestamp: {text!r}") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.replace(tzinfo=None)


def _array(value: Any) -> list[object] | None:
    if value is None or np.ma.getmaskarray(value).all():
        return None
    return [
        None if m else v
        for v, m in zip(
            np.ma.getdata(value).tolist(),
            np.ma.getmaskarray(value).tolist(),
            strict=True,
        )
    ]

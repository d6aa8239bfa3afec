"""CSV, TSV and ECSV: the types from the ECSV header or from the first rows, the
rows themselves copied as text, never parsed in Python.

PostgreSQL's CSV parser reads the file from its line of column names on (``COPY
... (FORMAT csv, HEADER)``): memory stays one chunk, the speed is ``psql
\\copy``'s, and a value of the wrong type stops the load with PostgreSQL's
message naming the line and column. Empty fields are NULL. For CSV and TSV
(header line of names, ``#`` comment lines before it allowed) the types are
inferred from the first ``infer_rows`` rows with the csv module: integers are
``bigint``, other numbers (``nan``, ``inf`` too) ``double precision``,
true/false ``boolean``, anything else ``text``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from taprunner.load.columns import LoadError, SourceColumn, numpy_datatype
from taprunner.load.source import Source, TextCopy

__all__ = ["open_delimited", "open_ecsv"]

_BOM = b"\xef\xbb\xbf"
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_FLOAT = re.compile(
    r"\s*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf|infinity)\s*",
    re.IGNORECASE,
)
_BOOLEAN = frozenset({"true", "false"})
_INT64 = 2**63


def _header_lines(path: Path, prefix: bytes) -> tuple[list[str], int]:
    """The leading lines starting with ``prefix`` and the byte offset after them."""
    lines: list[str] = []
    with open(path, "rb") as stream:
        offset = len(_BOM) if stream.read(3) == _BOM else 0
        stream.seek(offset)
        for line in stream:
            if not line.startswith(prefix):
                break
            lines.append(line.decode("utf-8").rstrip("\r\n"))
            offset += len(line)
    return lines, offset


def _rows(path: Path, offset: int, delimiter: str, count: int) -> Iterator[list[str]]:
    with open(path, "rb") as raw:
        raw.seek(offset)
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        for number, row in enumerate(reader):
            if number > count:
                return
            yield row


def open_delimited(path: Path, delimiter: str, infer_rows: int) -> Source:
    """A CSV (``,``) or TSV (tab) file: a line of names, then rows."""
    comments, offset = _header_lines(path, b"#")
    rows = _rows(path, offset, delimiter, infer_rows)
    names = next(rows, None)
    if not names:
        raise LoadError("no line of column names")
    kinds = [{"bigint", "double", "boolean"} for _ in names]
    for number, row in enumerate(rows, start=len(comments) + 2):
        if len(row) != len(names):
            raise LoadError(
                f"line {number} has {len(row)} fields, the header {len(names)}"
            )
        for possible, value in zip(kinds, row, strict=True):
            if value:
                _narrow(possible, value)
    columns = tuple(
        _column(name.strip(), possible)
        for name, possible in zip(names, kinds, strict=True)
    )
    return Source(
        path=path,
        columns=columns,
        text=TextCopy(delimiter, offset, skipped_lines=len(comments)),
    )


def _narrow(possible: set[str], value: str) -> None:
    if "bigint" in possible and not (
        _INTEGER.fullmatch(value) and -_INT64 <= int(value) < _INT64
    ):
        possible.discard("bigint")
    if "double" in possible and not _FLOAT.fullmatch(value):
        possible.discard("double")
    if "boolean" in possible and value.strip().lower() not in _BOOLEAN:
        possible.discard("boolean")


def _column(name: str, possible: set[str]) -> SourceColumn:
    if possible == {"bigint", "double", "boolean"}:  # only empty values seen
        return SourceColumn(name=name, datatype="unicodeChar", arraysize="*")
    for kind, datatype in (
        ("bigint", "long"),
        ("double", "double"),
        ("boolean", "boolean"),
    ):
        if kind in possible:
            return SourceColumn(name=name, datatype=datatype)
    return SourceColumn(name=name, datatype="unicodeChar", arraysize="*")


#: ECSV datatype -> VOTable datatype (as numpy_datatype maps numpy's).
def open_ecsv(path: Path) -> Source:
    """An ECSV 1.0 file: types, units, descriptions and meta from its header."""
    from astropy.table import meta  # type: ignore[import-untyped]

    lines, offset = _header_lines(path, b"#")
    if not lines or not lines[0].startswith("# %ECSV"):
        raise LoadError("no '# %ECSV' first line")
    body = [line[2:] if line.startswith("# ") else line[1:] for line in lines[1:]]
    header = meta.get_header_from_yaml(body)
    delimiter = str(header.get("delimiter", " "))
    columns = tuple(_ecsv_column(entry) for entry in header.get("datatype", []))
    names = next(_rows(path, offset, delimiter, 0), [])
    if names != [c.name for c in columns]:
        raise LoadError(
            f"the line of names ({' '.join(names)}) differs from the header's columns"
        )
    description = dict(header.get("meta") or {}).get("description")
    return Source(
        path=path,
        columns=columns,
        description=str(description) if description else None,
        text=TextCopy(
            delimiter, offset, skipped_lines=len(lines), quoted_empty_text_is_null=True
        ),
    )


def _ecsv_column(entry: dict[str, object]) -> SourceColumn:
    name = str(entry["name"])
    kind = str(entry.get("datatype"))
    if entry.get("subtype"):
        raise LoadError(
            f"column {name!r}: ECSV subtype {entry['subtype']} (arrays, objects) is"
            " not supported; write the table as FITS, VOTable or Parquet"
        )
    arraysize: str | None
    if kind == "string":
        datatype, arraysize = "unicodeChar", "*"
    else:
        try:
            dtype = np.dtype(kind)
        except TypeError:
            raise LoadError(
                f"column {name!r}: ECSV datatype {kind} is not supported"
            ) from None
        datatype, arraysize = numpy_datatype(name, dtype)
    extra = {str(k): str(v) for k, v in dict(entry.get("meta") or {}).items()}  # type: ignore[call-overload]
    return SourceColumn(
        name=name,
        datatype=datatype,
        arraysize=arraysize,
        unit=str(entry["unit"]) if entry.get("unit") else None,
        ucd=extra.get("ucd"),
        utype=extra.get("utype"),
        description=str(entry["description"]) if entry.get("description") else None,
    )

"""FITS binary tables: the first BINTABLE extension, read in batches of rows.

astropy reads the header; the rows are read as raw big-endian records, a batch
at a time (``numpy.fromfile``), so memory holds one batch whatever the file's
size (a memory map would keep every page read resident until the end).

Units come from TUNITn, UCDs from TUCDn, descriptions from TCOMMn, utypes from
TUTYPn (the FITS conventions DaCHS and TOPCAT write), else from the column
descriptions astropy serialises into the header (``Table.write``). TSCAL/TZERO
are applied (TZERO 2**15, 2**31, 2**63 on I, J, K: unsigned integers); an
integer equal to TNULLn is NULL, so is a logical of 0; float NaN stays NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taprunner.load.columns import LoadError, SourceColumn, numpy_datatype
from taprunner.load.source import Batches, Source

__all__ = ["open_fits"]


def open_fits(path: Path) -> Source:
    """The first binary table of ``path`` (see :func:`_open`)."""
    from astropy.utils.exceptions import (  # type: ignore[import-untyped]
        AstropyUserWarning,
    )

    with warnings.catch_warnings():
        # "File may have been truncated": _open says so, as an error.
        warnings.simplefilter("ignore", AstropyUserWarning)
        return _open(path)


def _open(path: Path) -> Source:
    """The first binary table of ``path`` (a :class:`Source` of record batches).

    Raises
    ------
    LoadError
        No binary table, variable-length arrays, or the file is shorter than
        its header says (truncated).
    """
    from astropy.io import fits  # type: ignore[import-untyped]

    with fits.open(path, memmap=True, lazy_load_hdus=False) as hdus:
        table = next((h for h in hdus if isinstance(h, fits.BinTableHDU)), None)
        if table is None:
            raise LoadError("no binary table (BINTABLE extension) in the file")
        info = table.fileinfo()
    header = table.header
    size = int(header["NAXIS1"]) * int(header["NAXIS2"])
    if info["datLoc"] + size > path.stat().st_size:
        raise LoadError(
            f"truncated: the table needs {size:,} bytes of data, "
            f"the file holds {path.stat().st_size - info['datLoc']:,}"
        )
    serialised = _astropy_columns(header)
    raw = table.columns.dtype.newbyteorder(">")
    if raw.itemsize != int(header["NAXIS1"]):
        raise LoadError("the columns do not fill NAXIS1 bytes per row")
    columns = []
    convert: list[_Column] = []
    for index, column in enumerate(table.columns, start=1):
        if any(letter in str(column.format) for letter in "PQX"):
            raise LoadError(f"column {column.name!r}: variable-length or bit arrays")
        kind = _Column.of(column, raw[index - 1])
        datatype, arraysize = numpy_datatype(column.name, kind.dtype)
        extra = serialised.get(column.name, {})
        columns.append(
            SourceColumn(
                name=column.name,
                datatype=datatype,
                arraysize=arraysize,
                unit=column.unit or None,
                ucd=_card(header, "TUCD", index) or extra.get("ucd"),
                utype=_card(header, "TUTYP", index) or extra.get("utype"),
                description=_card(header, "TCOMM", index) or extra.get("description"),
            )
        )
        convert.append(kind)
    description = header.get("DESCRIP") or header.get("description")
    first, count = int(info["datLoc"]), int(header["NAXIS2"])
    return Source(
        path=path,
        columns=tuple(columns),
        description=str(description) if description else None,
        batches=lambda rows: _batches(path, first, count, raw, convert, rows),
    )


def _card(header: Any, key: str, index: int) -> str | None:
    value = header.get(f"{key}{index}")
    return str(value).strip() or None if value is not None else None


def _astropy_columns(header: Any) -> dict[str, dict[str, str]]:
    """Descriptions and meta (ucd, utype) that astropy serialised as COMMENTs."""
    from astropy.table import meta  # type: ignore[import-untyped]

    lines = [str(c) for c in header.get("COMMENT", [])]
    try:
        start = lines.index("--BEGIN-ASTROPY-SERIALIZED-COLUMNS--")
        end = lines.index("--END-ASTROPY-SERIALIZED-COLUMNS--")
        parsed = meta.get_header_from_yaml(lines[start + 1 : end])
    except (ValueError, meta.YamlParseError):
        return {}
    found: dict[str, dict[str, str]] = {}
    for entry in parsed.get("datatype", []):
        values = {
            k: str(v) for k, v in dict(entry.get("meta") or {}).items() if v is not None
        }
        if entry.get("description"):
            values["description"] = str(entry["description"])
        found[str(entry["name"])] = values
    return found


#: TZERO of the unsigned integer convention, by raw type: the unsigned type.
_UNSIGNED = {("i", 2, 2**15): "u2", ("i", 4, 2**31): "u4", ("i", 8, 2**63): "u8"}


@dataclass(frozen=True, slots=True)
class _Column:
    """How one column's raw big-endian values become Python values."""

    dtype: np.dtype[Any]
    """The type of the values (after TSCAL/TZERO), for the column's datatype."""
    logical: bool = False
    scale: float | None = None
    zero: float | int | None = None
    null: int | None = None

    @classmethod
    def of(cls, column: Any, raw: np.dtype[Any]) -> _Column:
        base = raw.subdtype[0] if raw.subdtype is not None else raw
        shape = raw.subdtype[1] if raw.subdtype is not None else ()
        null = column.null if isinstance(column.null, int) else None
        scale = column.bscale if column.bscale not in (None, 1) else None
        zero = column.bzero if column.bzero not in (None, 0) else None
        if str(column.format).endswith("L"):
            return cls(
                np.dtype((np.bool_, shape)) if shape else np.dtype(np.bool_), True
            )
        unsigned = _UNSIGNED.get((base.kind, base.itemsize, zero or 0))
        if scale is None and unsigned is not None:
            kind = np.dtype(unsigned)
        elif scale is not None or zero is not None:
            kind = np.dtype(np.float64)
        else:
            kind = base.newbyteorder("=")
        dtype = np.dtype((kind, shape)) if shape else kind
        return cls(dtype, False, scale, zero, null)

    def values(self, raw: Any) -> list[object]:
        """The Python values of ``raw`` (one batch of this column)."""
        if raw.dtype.kind == "S":
            return [_text(v) for v in raw.tolist()]
        if self.logical:  # 'T', 'F' and 0 (NULL)
            flags: list[object] = (raw == ord("T")).tolist()
            if raw.ndim == 1:
                for i in np.flatnonzero(raw == 0).tolist():
                    flags[i] = None
            return flags
        nulls = np.flatnonzero(raw == self.null) if self.null is not None else None
        values = raw.astype(self.dtype.base if self.dtype.subdtype else self.dtype)
        if self.dtype.kind == "u" and self.zero is not None:
            values = raw.astype(self.dtype.base) ^ np.array(self.zero, self.dtype.base)
        elif self.scale is not None or self.zero is not None:
            values = raw * (self.scale or 1.0) + (self.zero or 0.0)
        result: list[object] = values.tolist()
        if nulls is not None and raw.ndim == 1:
            for i in nulls.tolist():
                result[i] = None
        return result


def _batches(
    path: Path,
    first: int,
    count: int,
    raw: np.dtype[Any],
    columns: list[_Column],
    rows: int,
) -> Batches:
    """Rows read ``rows`` at a time with plain reads (no memory map: the pages
    read stay no longer than the batch)."""
    with open(path, "rb") as stream:
        stream.seek(first)
        for start in range(0, count, rows):
            part = np.fromfile(stream, dtype=raw, count=min(rows, count - start))
            if len(part) < min(rows, count - start):
                raise LoadError("truncated: fewer rows than NAXIS2")
            names = raw.names or ()
            values = [c.values(part[n]) for c, n in zip(columns, names, strict=True)]
            yield list(zip(*values, strict=True))


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("ascii", "replace").rstrip()

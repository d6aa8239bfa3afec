"""FITS binary tables: the first BINTABLE extension, memory-mapped, read in slices.

Units come from TUNITn, UCDs from TUCDn, descriptions from TCOMMn, utypes from
TUTYPn (the FITS conventions DaCHS and TOPCAT write), else from the column
descriptions astropy serialises into the header (``Table.write``). TSCAL/TZERO
are applied (astropy); an integer equal to TNULLn is NULL.
"""

from __future__ import annotations

import warnings
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

    hdus = fits.open(path, memmap=True)
    table = next((h for h in hdus if isinstance(h, fits.BinTableHDU)), None)
    if table is None:
        raise LoadError("no binary table (BINTABLE extension) in the file")
    header = table.header
    info = table.fileinfo()
    size = int(header["NAXIS1"]) * int(header["NAXIS2"])
    if info["datLoc"] + size > path.stat().st_size:
        raise LoadError(
            f"truncated: the table needs {size:,} bytes of data, "
            f"the file holds {path.stat().st_size - info['datLoc']:,}"
        )
    serialised = _astropy_columns(header)
    columns = []
    for index, column in enumerate(table.columns, start=1):
        if any(letter in str(column.format) for letter in "PQ"):
            raise LoadError(f"column {column.name!r}: variable-length arrays")
        dtype = table.data.dtype[index - 1]
        datatype, arraysize = numpy_datatype(column.name, dtype)
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
    nulls = [c.null if isinstance(c.null, int) else None for c in table.columns]
    description = header.get("DESCRIP") or header.get("description")
    return Source(
        path=path,
        columns=tuple(columns),
        description=str(description) if description else None,
        batches=lambda rows: _batches(table.data, nulls, rows),
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


def _batches(data: Any, nulls: list[int | None], rows: int) -> Batches:
    for start in range(0, len(data), rows):
        part = data[start : start + rows]
        values = [_values(part.field(i), null) for i, null in enumerate(nulls)]
        yield list(zip(*values, strict=True))


def _values(array: Any, null: int | None) -> list[object]:
    if array.dtype.kind in "SU":
        return [_text(v) for v in array.tolist()]
    values: list[object] = array.tolist()
    if null is not None and array.dtype.kind in "iu" and array.ndim == 1:
        missing = np.flatnonzero(array == null)
        for i in missing.tolist():
            values[i] = None
    return values


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").rstrip()
    return str(value).rstrip()

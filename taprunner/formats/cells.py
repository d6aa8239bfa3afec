"""TABLEDATA cells (and the text of CSV/TSV): whole columns formatted at once."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from taprunner.formats.fields import FieldSpec, Row, flat_arrays, is_string, text_values

__all__ = ["column_texts", "tabledata", "xml_attr", "xml_text"]

# --------------------------------------------------------------------------- XML text
_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Escape ``value`` for element content (CR kept as a character reference)."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BAD_XML.sub("\ufffd", value.replace("\r", "&#13;"))


def xml_attr(value: str) -> str:
    """Escape ``value`` for a double-quoted attribute (whitespace kept verbatim)."""
    value = xml_text(value).replace('"', "&quot;")
    return value.replace("\n", "&#10;").replace("\t", "&#9;")


# ------------------------------------------------------------------------- TABLEDATA
_FLOAT_SPECIALS = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}
_NEEDS_ESCAPE = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _float_texts(array: npt.NDArray[np.float64], datatype: str) -> list[str]:
    """Shortest round-trip texts of float elements, NaN and infinities DALI-spelt."""
    if datatype == "float":  # float32 has its own shortest spelling
        texts: list[str] = array.astype(np.float32).astype(str).tolist()
    else:  # Python's repr is numpy's str for float64, and much faster
        texts = list(map(repr, array.tolist()))
    if np.isfinite(array).all():
        return texts
    return [_FLOAT_SPECIALS.get(t, t) for t in texts]


def _int_texts(values: Sequence[object]) -> list[str]:
    """Texts of integer elements (booleans as 1/0); raises TypeError on None."""
    try:
        return list(map(str, np.array(values, np.int64).tolist()))
    except OverflowError:  # beyond 64 bits (not from PostgreSQL): stay exact
        return [str(int(v)) for v in values]  # type: ignore[call-overload]


def _scalar_texts(field: FieldSpec, values: Sequence[object]) -> list[str] | None:
    """Texts of a column of numbers or booleans; None if it holds a NULL."""
    if field.datatype == "boolean":
        return None if None in values else ["T" if v else "F" for v in values]
    if field.datatype in ("float", "double"):
        array = np.array(values, np.float64)  # None becomes NaN
        if not np.isfinite(array).all() and None in values:
            return None
        return _float_texts(array, field.datatype)
    try:
        return _int_texts(values)
    except TypeError:  # None has no int value
        return None


def _element_texts(field: FieldSpec, values: Sequence[object]) -> list[str]:
    """Texts of array elements: a NULL element is NaN for floats, else empty."""
    if field.datatype in ("float", "double"):
        return _float_texts(np.array(values, np.float64), field.datatype)
    texts = _scalar_texts(field, values)
    if texts is not None:
        return texts
    if field.datatype == "boolean":
        return ["" if v is None else ("T" if v else "F") for v in values]
    return ["" if v is None else str(int(v)) for v in values]  # type: ignore[call-overload]


def column_texts(field: FieldSpec, column: Sequence[object]) -> list[str | None]:
    """Unescaped TABLEDATA texts of one column (arrays space-joined); None for NULL.

    Whole columns are formatted at once: per-value numpy calls cost far more than
    the formatting itself.
    """
    if is_string(field):
        return text_values(column)
    if field.arraysize is None:
        texts = _scalar_texts(field, column)
        if texts is not None:
            return texts  # type: ignore[return-value]
        present = [v for v in column if v is not None]
        found = iter(_scalar_texts(field, present) or ())
        return [None if v is None else next(found) for v in column]
    flat, lengths = flat_arrays(column, np.zeros(len(column), np.bool_))
    elements = _element_texts(field, flat)
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    return [
        None if v is None else " ".join(elements[a:b])
        for v, a, b in zip(column, starts, ends, strict=True)
    ]


def _cell_texts(field: FieldSpec, column: Sequence[object]) -> list[str | None]:
    """TABLEDATA cell contents (escaped) for one column; None for NULL."""
    texts = column_texts(field, column)
    if not is_string(field):
        return texts  # numbers, NaN and booleans need no escaping
    try:
        joined = "".join(texts)  # type: ignore[arg-type]
    except TypeError:  # NULLs
        joined = "".join([t for t in texts if t])
    if _NEEDS_ESCAPE.search(joined) is None:
        return texts
    return [None if t is None else xml_text(t) for t in texts]


def tabledata(fields: Sequence[FieldSpec], rows: Sequence[Row]) -> bytes:
    """TR elements of ``rows``: one %-template per batch, NULL cells as ``<TD/>``."""
    if not rows:
        return b""
    template = ["<TR>"]
    cells: list[list[str | None]] = []
    for field, column in zip(fields, zip(*rows, strict=True), strict=True):
        texts = _cell_texts(field, column)
        try:
            "".join(texts)  # type: ignore[arg-type]
            template.append("<TD>%s</TD>")
        except TypeError:  # NULLs: this column brings its own TD elements
            texts = ["<TD/>" if t is None else f"<TD>{t}</TD>" for t in texts]
            template.append("%s")
        cells.append(texts)
    template.append("</TR>\n")
    line = "".join(template)
    return "".join(map(line.__mod__, zip(*cells, strict=True))).encode("utf-8")

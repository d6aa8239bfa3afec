"""Streaming VOTable writer: FIELDs, BINARY2/BINARY/TABLEDATA bodies, DALI errors.

The encoder produces bytes piece by piece (``header``, ``encode`` per batch, ``footer``)
and does no I/O, so memory stays flat however many rows go through it. Binary rows are
packed column-wise with numpy (one structured array per run of fixed-size fields, a
vectorised scatter for variable-length ones) rather than row by row in Python.

Text columns are ``unicodeChar`` (UTF-16BE): astropy 8 decodes binary ``char`` as
ASCII only, so VOTable 1.5's UTF-8 ``char`` does not round-trip through it.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

Serialization = Literal["binary2", "binary", "tabledata"]
VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


class Row(Protocol):
    """One result row: a tuple, or an asyncpg Record (fields in FIELD order)."""

    def __getitem__(self, index: int, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One FIELD of the result table, in VOTable terms."""

    name: str
    datatype: str
    arraysize: str | None = None
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    description: str | None = None
    ID: str | None = None


_SCALARS: dict[str, tuple[str, str | None, str | None]] = {
    "int2": ("short", None, None),
    "int4": ("int", None, None),
    "int8": ("long", None, None),
    "oid": ("long", None, None),
    "float4": ("float", None, None),
    "float8": ("double", None, None),
    "numeric": ("double", None, None),
    "bool": ("boolean", None, None),
    "timestamp": ("char", "*", "timestamp"),
    "timestamptz": ("char", "*", "timestamp"),
    "date": ("char", "*", "timestamp"),
    "uuid": ("char", "*", None),
    "bytea": ("unsignedByte", "*", None),
    "point": ("double", "2", "point"),
}
_ARRAY_ELEMENTS = {
    "_int2": "short",
    "_int4": "int",
    "_int8": "long",
    "_float4": "float",
    "_float8": "double",
    "_bool": "boolean",
}


def field_for_pg_type(name: str, pg_type: str, **meta: Any) -> FieldSpec:
    """Map a PostgreSQL type name (asyncpg ``Attribute.type.name``) to a FIELD.

    ``meta`` sets or overrides any other FieldSpec attribute (unit, ucd, xtype, ...).
    Text and every unknown type become ``unicodeChar`` arraysize ``*``.
    """
    if pg_type.endswith("[]"):  # asyncpg names array types "float8[]"
        pg_type = "_" + pg_type[:-2]
    if pg_type in _SCALARS:
        datatype, arraysize, xtype = _SCALARS[pg_type]
    elif pg_type in _ARRAY_ELEMENTS:
        datatype, arraysize, xtype = _ARRAY_ELEMENTS[pg_type], "*", None
    else:
        datatype, arraysize, xtype = "unicodeChar", "*", None
    return replace(FieldSpec(name, datatype, arraysize, xtype=xtype), **meta)


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


def _attrs(pairs: Sequence[tuple[str, str | None]]) -> str:
    return "".join(f' {k}="{xml_attr(v)}"' for k, v in pairs if v is not None)


def _info(name: str, value: str, text: str | None) -> str:
    head = f"<INFO{_attrs([('name', name), ('value', value)])}"
    return f"{head}/>\n" if text is None else f"{head}>{xml_text(text)}</INFO>\n"


# ------------------------------------------------------------------- value conversion
def _to_text(value: object) -> str:
    """Text of a non-string value: DALI timestamps for dates, ``str`` otherwise."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _texts(column: Sequence[object]) -> list[str | None]:
    return [v if type(v) is str or v is None else _to_text(v) for v in column]


_NUMPY = {
    "short": ">i2",
    "int": ">i4",
    "long": ">i8",
    "float": ">f4",
    "double": ">f8",
    "unsignedByte": "u1",
    "boolean": "S1",
}
_INT_NULL = {"short": -(2**15), "int": -(2**31), "long": -(2**63), "unsignedByte": 255}
_IntArray = npt.NDArray[np.int64]


def _is_none(value: object) -> bool:
    return value is None


def _is_var(field: FieldSpec) -> bool:
    return field.arraysize is not None and field.arraysize.endswith("*")


def _fixed_count(field: FieldSpec) -> int:
    """Number of elements of a fixed-size field (1 for scalars)."""
    if field.arraysize is None:
        return 1
    count = 1
    for dim in field.arraysize.split("x"):
        count *= int(dim)
    return count


def _is_string(field: FieldSpec) -> bool:
    return field.datatype in ("char", "unicodeChar")


def _text_or_empty(value: object) -> str:
    return "" if value is None else _to_text(value)


def _encode_strings(
    field: FieldSpec, texts: Sequence[object], nulls: npt.NDArray[np.bool_]
) -> tuple[bytes, _IntArray]:
    """Concatenated encoded strings and each one's count (characters or bytes).

    ``nulls`` is set where a value is None (left alone when there is none).
    """
    try:  # fast path: no NULLs, all str
        joined = "".join(texts)  # type: ignore[arg-type]
        plain: Sequence[str] = texts  # type: ignore[assignment]
    except TypeError:
        nulls[:] = np.fromiter(map(_is_none, texts), np.bool_, len(texts))
        plain = [t if type(t) is str else _text_or_empty(t) for t in texts]
        joined = "".join(plain)
    lengths = np.fromiter(map(len, plain), np.int64, len(plain))
    if field.datatype == "unicodeChar":
        data = joined.encode("utf-16-be")
        if len(data) != 2 * int(lengths.sum()):  # astral characters take two units
            lengths = np.array([len(t.encode("utf-16-be")) // 2 for t in plain])
    else:
        data = joined.encode("utf-8")
        if len(data) != int(lengths.sum()):
            lengths = np.array([len(t.encode("utf-8")) for t in plain], np.int64)
    return data, lengths


def _numbers(
    field: FieldSpec,
    values: Sequence[object],
    nulls: npt.NDArray[np.bool_],
    binary2: bool,
) -> npt.NDArray[Any]:
    """Numpy array of (flattened) element values, NULLs replaced by the fill value.

    ``nulls`` is set where a value is None (left alone when there is none); a
    NULL float becomes NaN. The common no-NULL case costs one numpy conversion.
    """
    dtype = _NUMPY[field.datatype]
    if field.datatype == "boolean":
        flags = [b"?" if v is None else (b"T" if v else b"F") for v in values]
        if b"?" in flags:
            nulls[:] = np.fromiter(map(_is_none, values), np.bool_, len(values))
        return np.array(flags, dtype)
    if field.datatype in ("float", "double"):
        array = np.array(values, dtype)  # None becomes NaN
        if np.isnan(array).any():  # NaN is rare: only then look for NULLs
            nulls[:] = np.fromiter(map(_is_none, values), np.bool_, len(values))
        return array
    try:
        return np.array(values, dtype)
    except TypeError:  # NULLs (None has no int value)
        nulls[:] = np.fromiter(map(_is_none, values), np.bool_, len(values))
        fill = 0 if binary2 else _INT_NULL[field.datatype]
        return np.array([fill if v is None else v for v in values], dtype)


def _flat_arrays(
    column: Sequence[object], nulls: npt.NDArray[np.bool_]
) -> tuple[list[object], _IntArray]:
    """Flattened elements of an array column and the element count of each row."""
    lengths = np.fromiter(
        (-1 if v is None else len(v) for v in column),  # type: ignore[arg-type]
        np.int64,
        len(column),
    )
    if (lengths < 0).any():
        nulls[:] = lengths < 0
        lengths[nulls] = 0
    flat: list[object] = []
    for value in column:
        if value is not None:
            flat.extend(value)  # type: ignore[arg-type]
    return flat, lengths


# ----------------------------------------------------------------------- binary rows
Segment = tuple[npt.NDArray[Any], "int | _IntArray"]


class _BinaryPacker:
    """Packs row batches into BINARY2 (null mask) or BINARY (no mask) row bytes."""

    def __init__(self, fields: Sequence[FieldSpec], *, binary2: bool) -> None:
        self.fields = list(fields)
        self.binary2 = binary2
        self.mask_bytes = (len(self.fields) + 7) // 8

    def pack(self, rows: Sequence[Row]) -> npt.NDArray[np.uint8]:
        """The row bytes of ``rows`` (a flat uint8 array)."""
        n = len(rows)
        if n == 0:
            return np.empty(0, np.uint8)
        columns = list(zip(*rows, strict=True))  # one pass over the rows
        null_matrix = np.zeros((n, len(self.fields)), np.bool_)
        runs: list[list[tuple[str, npt.NDArray[Any]]]] = [[]]
        if self.binary2:
            runs[0].append(("m", np.empty(0)))  # the mask, known once columns are done
        var_parts: list[Segment] = []
        for i, (field, column) in enumerate(zip(self.fields, columns, strict=True)):
            var = self._column(field, column, null_matrix[:, i], runs[-1])
            if var is not None:
                var_parts.append(var)
                runs.append([])
        if self.binary2:
            runs[0][0] = ("m", np.packbits(null_matrix, axis=1))
        segments: list[Segment] = [(_records(runs[0], n), 0)]
        for var, run in zip(var_parts, runs[1:], strict=True):
            segments += [var, (_records(run, n), 0)]
        return _scatter(segments, n)

    def _column(
        self,
        field: FieldSpec,
        column: Sequence[object],
        nulls: npt.NDArray[np.bool_],
        fixed: list[tuple[str, npt.NDArray[Any]]],
    ) -> Segment | None:
        """Add the fixed part of one column to ``fixed``; return its variable part.

        ``nulls`` (this column of the null matrix) is set where the value is None.
        """
        name = f"f{len(fixed)}"
        if _is_string(field) and _is_var(field):
            data, lengths = _encode_strings(field, column, nulls)
            fixed.append((name, lengths.astype(">i4")))
            unit = 2 if field.datatype == "unicodeChar" else 1
            return np.frombuffer(data, np.uint8), lengths * unit
        if _is_string(field):
            codec = "utf-16-be" if field.datatype == "unicodeChar" else "utf-8"
            width = _fixed_count(field) * (2 if codec == "utf-16-be" else 1)
            texts = _texts(column)
            nulls[:] = np.fromiter(map(_is_none, texts), np.bool_, len(texts))
            cells = [(t or "").encode(codec)[:width] for t in texts]
            fixed.append((name, np.array(cells, dtype=f"S{width}")))
            return None
        if field.arraysize is None:
            fixed.append((name, _numbers(field, column, nulls, self.binary2)))
            return None
        if _is_var(field):
            flat, lengths = _flat_arrays(column, nulls)
            # NULL elements inside an array have no flag: they get the fill value.
            values = _numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
            fixed.append((name, lengths.astype(">i4")))
            raw = values.view(np.uint8) if values.size else np.empty(0, np.uint8)
            return raw, lengths * values.dtype.itemsize
        count = _fixed_count(field)
        filled = [[None] * count if v is None else v for v in column]
        flat, _ = _flat_arrays(filled, np.zeros(len(filled), np.bool_))
        nulls[:] = np.fromiter(map(_is_none, column), np.bool_, len(column))
        values = _numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
        fixed.append((name, values.reshape(len(column), count)))
        return None


def _records(fixed: list[tuple[str, npt.NDArray[Any]]], n: int) -> npt.NDArray[Any]:
    """Bytes (as uint8 array, ``n`` equal rows) of a run of fixed-size fields."""
    if not fixed:
        return np.empty(0, np.uint8)
    dtype = np.dtype([(name, arr.dtype, arr.shape[1:]) for name, arr in fixed])
    table = np.empty(n, dtype)
    for name, arr in fixed:
        table[name] = arr
    return table.view(np.uint8)


def _scatter(segments: list[Segment], n: int) -> npt.NDArray[np.uint8]:
    """Interleave per-row segments: fixed runs (equal widths) and variable parts.

    Each output byte gets the label of its segment (``np.repeat`` of the per-row
    lengths); a boolean-mask assignment per segment then fills the output in order.
    """
    parts = [
        (data, data.size // n if isinstance(lengths, int) else lengths)
        for data, lengths in segments
        if data.size
    ]
    if len(parts) <= 1:
        return parts[0][0] if parts else np.empty(0, np.uint8)
    lengths_matrix = np.empty((n, len(parts)), np.int64)
    for k, (_, width) in enumerate(parts):
        lengths_matrix[:, k] = width
    labels = np.repeat(
        np.tile(np.arange(len(parts), dtype=np.uint8), n), lengths_matrix.ravel()
    )
    out = np.empty(labels.size, np.uint8)
    for k, (data, _) in enumerate(parts):
        out[labels == k] = data
    return out


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
    if _is_string(field):
        return _texts(column)
    if field.arraysize is None:
        texts = _scalar_texts(field, column)
        if texts is not None:
            return texts  # type: ignore[return-value]
        present = [v for v in column if v is not None]
        found = iter(_scalar_texts(field, present) or ())
        return [None if v is None else next(found) for v in column]
    flat, lengths = _flat_arrays(column, np.zeros(len(column), np.bool_))
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
    if not _is_string(field):
        return texts  # numbers, NaN and booleans need no escaping
    try:
        joined = "".join(texts)  # type: ignore[arg-type]
    except TypeError:  # NULLs
        joined = "".join([t for t in texts if t])
    if _NEEDS_ESCAPE.search(joined) is None:
        return texts
    return [None if t is None else xml_text(t) for t in texts]


def _tabledata(fields: Sequence[FieldSpec], rows: Sequence[Row]) -> bytes:
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


# --------------------------------------------------------------------------- document
class VOTableEncoder:
    """Produces the bytes of one VOTable document, piece by piece (no I/O)."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        *,
        serialization: Serialization = "binary2",
        version: Literal["1.4", "1.5"] = "1.4",
        infos: Sequence[tuple[str, str, str | None]] = (),
        description: str | None = None,
    ) -> None:
        self.fields = list(fields)
        self.serialization = serialization
        self.version = version
        self.infos = list(infos)
        self.description = description
        self._packer = (
            None
            if serialization == "tabledata"
            else _BinaryPacker(self.fields, binary2=serialization == "binary2")
        )
        self._carry = b""

    def header(self) -> bytes:
        """Everything up to the opening ``<STREAM>`` or ``<TABLEDATA>``."""
        parts = [
            _XML_DECL,
            f'<VOTABLE version="{self.version}" xmlns="{VOTABLE_NS}">\n',
            '<RESOURCE type="results">\n',
        ]
        if self.description is not None:
            parts.append(f"<DESCRIPTION>{xml_text(self.description)}</DESCRIPTION>\n")
        parts.append(_info("QUERY_STATUS", "OK", None))
        parts.extend(_info(name, value, text) for name, value, text in self.infos)
        parts.append("<TABLE>\n")
        parts.extend(self._field_xml(field) for field in self.fields)
        if self.serialization == "tabledata":
            parts.append("<DATA><TABLEDATA>\n")
        else:
            parts.append(
                f'<DATA><{self.serialization.upper()}><STREAM encoding="base64">\n'
            )
        return "".join(parts).encode("utf-8")

    def _field_xml(self, field: FieldSpec) -> str:
        attrs = _attrs(
            [
                ("name", field.name),
                ("ID", field.ID),
                ("datatype", field.datatype),
                ("arraysize", field.arraysize),
                ("unit", field.unit),
                ("ucd", field.ucd),
                ("utype", field.utype),
                ("xtype", field.xtype),
            ]
        )
        body = ""
        if field.description is not None:
            body += f"<DESCRIPTION>{xml_text(field.description)}</DESCRIPTION>"
        if (
            self.serialization == "binary"
            and field.datatype in _INT_NULL
            and field.datatype != "unsignedByte"
        ):
            body += f'<VALUES null="{_INT_NULL[field.datatype]}"/>'
        return f"<FIELD{attrs}>{body}</FIELD>\n" if body else f"<FIELD{attrs}/>\n"

    def encode(self, rows: Sequence[Row]) -> bytes:
        """Encode a batch of rows (field order, ``None`` for NULL)."""
        if self._packer is None:
            return _tabledata(self.fields, rows)
        return self._base64(self._packer.pack(rows).data)

    def encode_raw(self, row_bytes: bytes) -> bytes:
        """Base64 text of already-encoded binary rows, carrying 0-2 bytes over."""
        if self._packer is None:
            raise ValueError("encode_raw needs a BINARY or BINARY2 serialization")
        return self._base64(memoryview(row_bytes))

    def _base64(self, row_bytes: memoryview) -> bytes:
        data = row_bytes.cast("B")
        if self._carry:
            data = memoryview(b"".join((self._carry, data)))
        cut = len(data) - len(data) % 3
        self._carry = bytes(data[cut:])
        if cut == 0:
            return b""
        return binascii.b2a_base64(data[:cut])

    def footer(self, *, overflow: bool = False, error: str | None = None) -> bytes:
        """Close the data, the TABLE and the document.

        After the TABLE comes a trailing QUERY_STATUS: ERROR with ``error`` as its
        text when the query failed after rows were sent (DALI 1.1 section 4.4.1;
        clients take the last status), else OVERFLOW if ``overflow``.
        """
        if self._packer is None:
            parts = ["</TABLEDATA></DATA>\n"]
        else:
            tail = binascii.b2a_base64(self._carry) if self._carry else b""
            self._carry = b""
            kind = self.serialization.upper()
            parts = [tail.decode("ascii"), f"</STREAM></{kind}></DATA>\n"]
        parts.append("</TABLE>\n")
        if error is not None:
            parts.append(_info("QUERY_STATUS", "ERROR", error))
        elif overflow:
            parts.append(_info("QUERY_STATUS", "OVERFLOW", None))
        parts.append("</RESOURCE>\n</VOTABLE>\n")
        return "".join(parts).encode("utf-8")


def error_document(message: str, *, version: str = "1.4") -> bytes:
    """DALI error VOTable: QUERY_STATUS=ERROR with ``message`` as the INFO text."""
    return (
        f'{_XML_DECL}<VOTABLE version="{xml_attr(version)}" xmlns="{VOTABLE_NS}">\n'
        '<RESOURCE type="results">\n'
        f"{_info('QUERY_STATUS', 'ERROR', message)}"
        "</RESOURCE>\n</VOTABLE>\n"
    ).encode()

"""Binary VOTable rows from Arrow record batches, column by column with numpy.

The columnar query path (:mod:`taprunner.query.columnar`) receives each batch as Arrow
arrays (a nanoarrow ``CArray`` of struct type, one child per result column). Their
buffers are read in place as numpy arrays: no Python object per value. This
module turns them into :class:`~taprunner.formats.binpack.PackedColumn` parts for the
shared row assembly of :class:`~taprunner.formats.binpack.BinaryPacker`, with the same
bytes the row path writes for the same values (NULL fill values included).

Supported Arrow types are the ones :data:`ARROW_FORMATS` names: signed
integers, floats, booleans and UTF-8 strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from taprunner.formats.binpack import BinaryPacker, PackedColumn
from taprunner.formats.fields import NUMPY_TYPES, FieldSpec, field_for_pg_type, int_fill
from taprunner.formats.pgtypes import PLAIN_TYPES

__all__ = [
    "ARROW_FORMATS",
    "ArrowBatch",
    "ColumnsChanged",
    "UnsupportedArrow",
    "columnar_fields",
    "pack_batch",
    "text_column",
]

#: PostgreSQL types (asyncpg type names) whose values this module packs, and the
#: Arrow formats the ADBC driver gives each of them.
ARROW_FORMATS = {name: facts.arrow for name, facts in PLAIN_TYPES.items()}
#: Arrow number format -> numpy type of its data buffer and the FIELD datatype.
_ARROW_NUMBERS = {
    "s": ("<i2", "short"),
    "i": ("<i4", "int"),
    "l": ("<i8", "long"),
    "f": ("<f4", "float"),
    "g": ("<f8", "double"),
}


class ArrowSchema(Protocol):
    @property
    def format(self) -> str: ...


class ArrowView(Protocol):
    def buffer(self, index: int, /) -> Any: ...


class ArrowBatch(Protocol):
    """What is used of a nanoarrow ``CArray``."""

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def null_count(self) -> int: ...

    @property
    def n_children(self) -> int: ...

    @property
    def schema(self) -> ArrowSchema: ...

    def child(self, index: int, /) -> ArrowBatch: ...

    def view(self) -> ArrowView: ...


def columnar_fields(fields: Sequence[FieldSpec], pg_types: Sequence[str]) -> bool:
    """Whether every column can take the columnar path with these FIELDs: a type
    of :data:`ARROW_FORMATS`, with the datatype and arraysize its type maps to
    (not, e.g., the double array of an ADQL geometry)."""
    for field, pg_type in zip(fields, pg_types, strict=True):
        if pg_type not in ARROW_FORMATS:
            return False
        plain = field_for_pg_type(field.name, pg_type)
        if (field.datatype, field.arraysize) != (plain.datatype, plain.arraysize):
            return False
    return True


class UnsupportedArrow(TypeError):
    """An Arrow column type the packer does not handle."""


class ColumnsChanged(Exception):
    """The result's Arrow columns are not the ones its FIELDs were made for (the
    table changed since the statement was described)."""


def pack_batch(
    packer: BinaryPacker, batch: ArrowBatch, limit: int | None = None
) -> npt.NDArray[np.uint8]:
    """The binary row bytes (flat uint8) of one Arrow struct batch, or of its
    first ``limit`` rows."""
    n = batch.length if limit is None else min(limit, batch.length)
    null_matrix = np.zeros((n, batch.n_children), np.bool_)
    columns = [
        _column(field, batch.child(i), batch.offset, n, null_matrix[:, i], packer)
        for i, field in enumerate(packer.fields)
    ]
    return packer.pack_columns(columns, null_matrix)


def _buffer(array: ArrowBatch, index: int, dtype: str | type) -> npt.NDArray[Any]:
    return np.frombuffer(array.view().buffer(index), dtype)


def _bits(array: ArrowBatch, index: int, start: int, n: int) -> npt.NDArray[np.bool_]:
    raw = _buffer(array, index, np.uint8)
    bits = np.unpackbits(raw, count=start + n, bitorder="little")[start:]
    return bits.view(np.bool_)


def _column(
    field: FieldSpec,
    array: ArrowBatch,
    parent_offset: int,
    n: int,
    nulls: npt.NDArray[np.bool_],
    packer: BinaryPacker,
) -> PackedColumn:
    """One Arrow column packed as ``field``; sets ``nulls`` where it is NULL."""
    start = parent_offset + array.offset
    if array.null_count:
        nulls[:] = ~_bits(array, 0, start, n)
    fmt = array.schema.format
    if fmt in _ARROW_NUMBERS and _ARROW_NUMBERS[fmt][1] == field.datatype:
        values = _buffer(array, 1, _ARROW_NUMBERS[fmt][0])[start : start + n]
        out = values.astype(NUMPY_TYPES[field.datatype])
        if array.null_count:
            if field.datatype in ("float", "double"):
                out[nulls] = np.nan
            else:
                out[nulls] = int_fill(field, packer.binary2)
        return PackedColumn(out)
    if fmt == "b" and field.datatype == "boolean":
        flags = np.where(_bits(array, 1, start, n), b"T", b"F").astype("S1")
        flags[nulls] = b"?"
        return PackedColumn(flags)
    if fmt in ("u", "U") and field.datatype in ("char", "unicodeChar"):
        return _strings(field, array, start, n, nulls)
    raise UnsupportedArrow(
        f"column {field.name!r}: Arrow type {fmt!r} as {field.datatype}"
    )


def _strings(
    field: FieldSpec,
    array: ArrowBatch,
    start: int,
    n: int,
    nulls: npt.NDArray[np.bool_],
) -> PackedColumn:
    """A UTF-8 column as a variable-length char (UTF-8) or unicodeChar (UTF-16BE)."""
    offsets = _buffer(array, 1, "<i4" if array.schema.format == "u" else "<i8")
    offsets = offsets[start : start + n + 1].astype(np.int64)
    data = _buffer(array, 2, np.uint8)[offsets[0] : offsets[-1]]
    lengths = np.diff(offsets)
    if nulls.any() and lengths[nulls].any():  # a NULL's bytes are not its value
        data = data[np.repeat(~nulls, lengths)]
        lengths[nulls] = 0
    return text_column(field, data, lengths)


def text_column(
    field: FieldSpec, data: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]
) -> PackedColumn:
    """UTF-8 values (``data``, one after the other, ``lengths`` bytes each, 0 for
    NULL) as a variable-length char (UTF-8) or unicodeChar (UTF-16BE) column."""
    if field.datatype == "char":
        return PackedColumn(lengths.astype(">i4"), (data, lengths))
    if not data.size or int(data.max()) < 0x80:  # ASCII: UTF-16BE is a zero byte more
        wide = np.zeros(2 * data.size, np.uint8)
        wide[1::2] = data
        return PackedColumn(lengths.astype(">i4"), (wide, 2 * lengths))
    return _utf16(data, lengths)


def _utf16(data: npt.NDArray[np.uint8], lengths: npt.NDArray[np.int64]) -> PackedColumn:
    """Non-ASCII UTF-8 strings as UTF-16BE, each one's count in 16-bit units.

    A UTF-8 lead byte of 4 (0xF0 and up) makes a surrogate pair, any other lead
    byte one unit; continuation bytes (0x80-0xBF) none. Invalid UTF-8 (only
    possible from a non-UTF-8 database) is decoded string by string with
    replacement characters.
    """
    try:
        wide = bytes(data).decode("utf-8").encode("utf-16-be")
    except UnicodeDecodeError:
        ends = np.cumsum(lengths)
        texts = [
            bytes(data[end - size : end]).decode("utf-8", "replace").encode("utf-16-be")
            for end, size in zip(ends.tolist(), lengths.tolist(), strict=True)
        ]
        units = np.fromiter((len(t) // 2 for t in texts), np.int64, len(texts))
        wide = b"".join(texts)
    else:
        per_byte = np.ones(data.size, np.int64)
        per_byte[(data >= 0x80) & (data < 0xC0)] = 0
        per_byte[data >= 0xF0] = 2
        ends = np.concatenate(([0], np.cumsum(per_byte)))
        bounds = np.concatenate(([0], np.cumsum(lengths)))
        units = ends[bounds[1:]] - ends[bounds[:-1]]
    return PackedColumn(units.astype(">i4"), (np.frombuffer(wide, np.uint8), 2 * units))

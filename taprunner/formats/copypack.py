"""Binary VOTable rows from decoded binary COPY batches (:mod:`.pgbinary`).

PostgreSQL's binary values are big-endian like VOTable's: numbers go into the
rows as they came, only NULLs get their fill value (NaN, or BINARY's VALUES null
of an integer); booleans become ``T``/``F``/``?`` and text UTF-8 or UTF-16BE.

A run of rows of one layout (:mod:`.copyruns`) gives rows of one size: they
are one structured array, each field assigned from its strided view of the
COPY bytes (a NULL's fill, the null mask and the text counts are the same in
every row). Other batches' rows are assembled as one rows x width byte
matrix, each field's bytes written into its columns (texts padded to the
batch's longest), and the padding then dropped in one boolean selection: a
few passes over the batch's bytes. Texts that are not ASCII as
``unicodeChar`` (a varying number of UTF-16 units per byte) take the shared
row assembly of :class:`~taprunner.formats.binpack.BinaryPacker` instead
(:func:`taprunner.formats.arrow.text_column`). Either way the bytes are those
of the asyncpg and Arrow paths for the same values.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from taprunner.formats.arrow import UnsupportedArrow, text_column
from taprunner.formats.binpack import BinaryPacker, PackedColumn
from taprunner.formats.copyruns import CopyRun
from taprunner.formats.fields import NUMPY_TYPES, FieldSpec, int_fill
from taprunner.formats.pgbinary import CopyBatch, CopyColumn, text_bytes

__all__ = ["pack_copy"]

_NUMBERS = frozenset({"short", "int", "long", "float", "double"})


class _Block(NamedTuple):
    """Bytes of one field in each row (rows x width) and, for a text, how many
    of them are its value (the rest is padding)."""

    data: npt.NDArray[np.uint8]
    used: npt.NDArray[np.int64] | None = None


def pack_copy(packer: BinaryPacker, batch: CopyBatch) -> npt.NDArray[np.uint8]:
    """The binary row bytes (flat uint8) of ``batch``."""
    if batch.run is not None:
        packed = _pack_run(packer, batch.run)
        if packed is not None:
            return packed
    n = batch.rows
    null_matrix = np.empty((n, len(packer.fields)), np.bool_)
    for i, column in enumerate(batch.columns):
        null_matrix[:, i] = column.nulls
    blocks = [_Block(np.packbits(null_matrix, axis=1))] if packer.binary2 else []
    for field, column in zip(packer.fields, batch.columns, strict=True):
        if column.lengths is None:
            blocks.append(_Block(_fixed(field, column, packer.binary2)))
            continue
        text = _text(field, column)
        if text is None:  # not ASCII as unicodeChar: the shared row assembly
            return _packed(packer, batch, null_matrix)
        blocks += text
    return _assemble(blocks, n)


def _assemble(blocks: list[_Block], n: int) -> npt.NDArray[np.uint8]:
    width = sum(block.data.shape[1] for block in blocks)
    rows = np.empty((n, width), np.uint8)
    keep: npt.NDArray[np.bool_] | None = None
    at = 0
    for data, used in blocks:
        size = data.shape[1]
        rows[:, at : at + size] = data
        if used is not None:
            if keep is None:
                keep = np.ones((n, width), np.bool_)
            keep[:, at : at + size] = np.arange(size) < used[:, None]
        at += size
    return rows.reshape(-1) if keep is None else rows[keep]


def _fixed(field: FieldSpec, column: CopyColumn, binary2: bool) -> Any:
    """A number's or boolean's bytes (rows x width), NULLs filled."""
    values = np.ascontiguousarray(_values(field, column, binary2))  # a run's: strided
    return values.view(np.uint8).reshape(len(values), -1)


def _values(field: FieldSpec, column: CopyColumn, binary2: bool) -> Any:
    nulls = column.nulls
    if field.datatype in _NUMBERS:
        dtype = np.dtype(NUMPY_TYPES[field.datatype])
        if column.values.shape[1:] != (dtype.itemsize,):
            raise UnsupportedArrow(f"column {field.name!r}: not {field.datatype}")
        values = column.values.view(dtype)[:, 0]
        if nulls.any():
            fill = np.nan if field.datatype in ("float", "double") else None
            values[nulls] = int_fill(field, binary2) if fill is None else fill
        return values
    if field.datatype == "boolean" and column.values.shape[1:] == (1,):
        flags = np.where(column.values[:, 0] != 0, b"T", b"F").astype("S1")
        flags[nulls] = b"?"
        return flags
    raise UnsupportedArrow(f"column {field.name!r}: binary COPY as {field.datatype}")


def _text(field: FieldSpec, column: CopyColumn) -> list[_Block] | None:
    """A text's count and padded bytes; None if it needs the shared assembly."""
    if field.datatype not in ("char", "unicodeChar"):
        raise UnsupportedArrow(f"column {field.name!r}: text as {field.datatype}")
    assert column.lengths is not None
    padded, lengths = column.values, column.lengths
    if padded.ndim != 2:
        return None
    count = _Block(lengths.astype(">i4").view(np.uint8).reshape(-1, 4))
    if field.datatype == "char":
        return [count, _Block(padded, lengths)]
    width = padded.shape[1]
    if ((padded >= 0x80) & (np.arange(width) < lengths[:, None])).any():
        return None
    wide = np.zeros((len(padded), 2 * width), np.uint8)
    wide[:, 1::2] = padded
    return [count, _Block(wide, 2 * lengths)]


def _packed(
    packer: BinaryPacker, batch: CopyBatch, null_matrix: npt.NDArray[np.bool_]
) -> npt.NDArray[np.uint8]:
    columns = []
    for field, column in zip(packer.fields, batch.columns, strict=True):
        if column.lengths is None:
            columns.append(PackedColumn(_values(field, column, packer.binary2)))
        else:
            columns.append(text_column(field, text_bytes(column), column.lengths))
    return packer.pack_columns(columns, null_matrix)


def _pack_run(packer: BinaryPacker, run: CopyRun) -> npt.NDArray[np.uint8] | None:
    """The row bytes of a run as one structured array; None if a field needs the
    general assembly (non-ASCII text as ``unicodeChar``, another type)."""
    parts: list[tuple[npt.DTypeLike, Any]] = []
    if packer.binary2:
        mask = np.packbits([length < 0 for length in run.lengths])
        parts.append((("u1", (len(mask),)), mask))
    for i, field in enumerate(packer.fields):
        null = run.lengths[i] < 0
        if field.datatype in _NUMBERS:
            dtype = np.dtype(NUMPY_TYPES[field.datatype])
            if not null and run.lengths[i] != dtype.itemsize:
                return None
            floats = field.datatype in ("float", "double")
            fill = np.nan if floats else int_fill(field, packer.binary2)
            parts.append((dtype, fill if null else run.field(i, dtype)))
        elif field.datatype == "boolean" and run.lengths[i] in (-1, 1):
            flag = b"?" if null else np.where(run.field(i, "u1"), b"T", b"F")
            parts.append(("S1", flag))
        elif field.datatype in ("char", "unicodeChar"):
            size = max(run.lengths[i], 0)
            parts.append((">i4", size))
            if not size:
                continue
            if field.datatype == "char":
                parts.append((f"V{size}", run.field(i, f"V{size}")))
                continue
            wide = _utf16_ascii(run.field_bytes(i))
            if wide is None:
                return None
            parts.append((wide.dtype, wide))
        else:
            return None
    return _records(parts, run.rows)


def _utf16_ascii(values: npt.NDArray[np.uint8]) -> npt.NDArray[Any] | None:
    """ASCII texts (rows x bytes) as UTF-16BE, one void item per row; None if
    any byte is not ASCII."""
    count, size = values.shape
    # Native 16-bit units of value << 8 are, little-endian, the bytes 00 b.
    wide = np.empty((count, size), "<u2")
    np.left_shift(values, 8, out=wide, dtype="<u2")
    if (wide >= 0x8000).any():
        return None
    return wide.view(f"V{2 * size}").reshape(count)


def _records(
    parts: list[tuple[npt.DTypeLike, Any]], count: int
) -> npt.NDArray[np.uint8]:
    """``count`` rows of the fields ``parts`` (dtype, values or one value for
    every row) one after the other, without padding."""
    dtypes = [np.dtype(dtype) for dtype, _ in parts]
    offsets = np.cumsum([0] + [d.itemsize for d in dtypes])
    names = [f"f{i}" for i in range(len(parts))]
    layout = np.dtype(
        {
            "names": names,
            "formats": dtypes,
            "offsets": offsets[:-1].tolist(),
            "itemsize": int(offsets[-1]),
        }
    )
    rows = np.empty(count, layout)
    for name, (_, values) in zip(names, parts, strict=True):
        rows[name] = values
    return rows.view(np.uint8)

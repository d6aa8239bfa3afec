"""Binary VOTable rows from decoded binary COPY batches (:mod:`.pgbinary`).

PostgreSQL's binary values are big-endian like VOTable's: numbers go into the
rows as they came, only NULLs get their fill value (NaN, or BINARY's VALUES null
of an integer); booleans become ``T``/``F``/``?`` and text UTF-8 or UTF-16BE
(:func:`taprunner.formats.arrow.text_column`). The row assembly is the shared one
of :class:`~taprunner.formats.binpack.BinaryPacker`: the same bytes as the
asyncpg and Arrow paths for the same values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from taprunner.formats.arrow import UnsupportedArrow, text_column
from taprunner.formats.binpack import BinaryPacker, PackedColumn
from taprunner.formats.fields import NUMPY_TYPES, FieldSpec, int_fill
from taprunner.formats.pgbinary import CopyBatch, CopyColumn

__all__ = ["pack_copy"]

_NUMBERS = frozenset({"short", "int", "long", "float", "double"})


def pack_copy(packer: BinaryPacker, batch: CopyBatch) -> npt.NDArray[np.uint8]:
    """The binary row bytes (flat uint8) of ``batch``."""
    null_matrix = np.empty((batch.rows, len(packer.fields)), np.bool_)
    columns = []
    for i, (field, column) in enumerate(zip(packer.fields, batch.columns, strict=True)):
        null_matrix[:, i] = column.nulls
        columns.append(_column(field, column, packer.binary2))
    return packer.pack_columns(columns, null_matrix)


def _column(field: FieldSpec, column: CopyColumn, binary2: bool) -> PackedColumn:
    nulls = column.nulls
    if column.lengths is not None:
        if field.datatype not in ("char", "unicodeChar"):
            raise UnsupportedArrow(f"column {field.name!r}: text as {field.datatype}")
        return text_column(field, column.values, column.lengths)
    if field.datatype in _NUMBERS:
        dtype = np.dtype(NUMPY_TYPES[field.datatype])
        if column.values.shape[1:] != (dtype.itemsize,):
            raise UnsupportedArrow(f"column {field.name!r}: not {field.datatype}")
        values: npt.NDArray[Any] = column.values.view(dtype)[:, 0]
        if nulls.any():
            fill = np.nan if field.datatype in ("float", "double") else None
            values[nulls] = int_fill(field, binary2) if fill is None else fill
        return PackedColumn(values)
    if field.datatype == "boolean" and column.values.shape[1:] == (1,):
        flags = np.where(column.values[:, 0] != 0, b"T", b"F").astype("S1")
        flags[nulls] = b"?"
        return PackedColumn(flags)
    raise UnsupportedArrow(f"column {field.name!r}: binary COPY as {field.datatype}")

"""BINARY and BINARY2 row packing: whole batches column-wise with numpy.

Fixed-size fields go through one structured array per run of them; variable-length
ones are interleaved with a vectorised scatter rather than row by row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from taprunner.formats.fields import (
    FieldSpec,
    IntArray,
    Row,
    encode_strings,
    fixed_count,
    flat_arrays,
    is_none,
    is_string,
    is_var,
    numbers,
    text_values,
)

__all__ = ["BinaryPacker", "PackedColumn"]

# ----------------------------------------------------------------------- binary rows
Segment = tuple[npt.NDArray[Any], "int | IntArray"]


class PackedColumn(NamedTuple):
    """One column of a batch, ready to be interleaved into binary rows.

    ``fixed``: the fixed-size part of each row (the value, or the big-endian
    element count of a variable-length field), one entry (or row of a 2-d array)
    per row. ``var``: a variable-length field's element bytes, concatenated, and
    each row's byte count; None for fixed-size fields.
    """

    fixed: npt.NDArray[Any]
    var: Segment | None = None


class BinaryPacker:
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
        packed = [
            self._column(field, column, null_matrix[:, i])
            for i, (field, column) in enumerate(zip(self.fields, columns, strict=True))
        ]
        return self.pack_columns(packed, null_matrix)

    def pack_columns(
        self, columns: Sequence[PackedColumn], null_matrix: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.uint8]:
        """The row bytes of a batch given column-wise.

        ``null_matrix`` (rows x fields) flags the NULL cells; only BINARY2 uses it.
        """
        n = len(null_matrix)
        if n == 0:
            return np.empty(0, np.uint8)
        runs: list[list[tuple[str, npt.NDArray[Any]]]] = [[]]
        if self.binary2:
            runs[0].append(("m", np.packbits(null_matrix, axis=1)))
        var_parts: list[Segment] = []
        for column in columns:
            runs[-1].append((f"f{len(runs[-1])}", column.fixed))
            if column.var is not None:
                var_parts.append(column.var)
                runs.append([])
        segments: list[Segment] = [(_records(runs[0], n), 0)]
        for var, run in zip(var_parts, runs[1:], strict=True):
            segments += [var, (_records(run, n), 0)]
        return _scatter(segments, n)

    def _column(
        self, field: FieldSpec, column: Sequence[object], nulls: npt.NDArray[np.bool_]
    ) -> PackedColumn:
        """One column of Python values, packed; ``nulls`` (this column of the
        null matrix) is set where the value is None."""
        if is_string(field) and is_var(field):
            data, lengths = encode_strings(field, column, nulls)
            unit = 2 if field.datatype == "unicodeChar" else 1
            return PackedColumn(
                lengths.astype(">i4"), (np.frombuffer(data, np.uint8), lengths * unit)
            )
        if is_string(field):
            codec = "utf-16-be" if field.datatype == "unicodeChar" else "utf-8"
            width = fixed_count(field) * (2 if codec == "utf-16-be" else 1)
            texts = text_values(column)
            nulls[:] = np.fromiter(map(is_none, texts), np.bool_, len(texts))
            cells = [(t or "").encode(codec)[:width] for t in texts]
            return PackedColumn(np.array(cells, dtype=f"S{width}"))
        if field.arraysize is None:
            return PackedColumn(numbers(field, column, nulls, self.binary2))
        if is_var(field):
            flat, lengths = flat_arrays(column, nulls)
            # NULL elements inside an array have no flag: they get the fill value.
            values = numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
            raw = values.view(np.uint8) if values.size else np.empty(0, np.uint8)
            return PackedColumn(
                lengths.astype(">i4"), (raw, lengths * values.dtype.itemsize)
            )
        count = fixed_count(field)
        filled = [[None] * count if v is None else v for v in column]
        flat, _ = flat_arrays(filled, np.zeros(len(filled), np.bool_))
        nulls[:] = np.fromiter(map(is_none, column), np.bool_, len(column))
        values = numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
        return PackedColumn(values.reshape(len(column), count))


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

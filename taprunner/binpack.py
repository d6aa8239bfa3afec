"""BINARY and BINARY2 row packing: whole batches column-wise with numpy.

Fixed-size fields go through one structured array per run of them; variable-length
ones are interleaved with a vectorised scatter rather than row by row in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from taprunner.fields import (
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

__all__ = ["BinaryPacker"]

# ----------------------------------------------------------------------- binary rows
Segment = tuple[npt.NDArray[Any], "int | IntArray"]


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
        if is_string(field) and is_var(field):
            data, lengths = encode_strings(field, column, nulls)
            fixed.append((name, lengths.astype(">i4")))
            unit = 2 if field.datatype == "unicodeChar" else 1
            return np.frombuffer(data, np.uint8), lengths * unit
        if is_string(field):
            codec = "utf-16-be" if field.datatype == "unicodeChar" else "utf-8"
            width = fixed_count(field) * (2 if codec == "utf-16-be" else 1)
            texts = text_values(column)
            nulls[:] = np.fromiter(map(is_none, texts), np.bool_, len(texts))
            cells = [(t or "").encode(codec)[:width] for t in texts]
            fixed.append((name, np.array(cells, dtype=f"S{width}")))
            return None
        if field.arraysize is None:
            fixed.append((name, numbers(field, column, nulls, self.binary2)))
            return None
        if is_var(field):
            flat, lengths = flat_arrays(column, nulls)
            # NULL elements inside an array have no flag: they get the fill value.
            values = numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
            fixed.append((name, lengths.astype(">i4")))
            raw = values.view(np.uint8) if values.size else np.empty(0, np.uint8)
            return raw, lengths * values.dtype.itemsize
        count = fixed_count(field)
        filled = [[None] * count if v is None else v for v in column]
        flat, _ = flat_arrays(filled, np.zeros(len(filled), np.bool_))
        nulls[:] = np.fromiter(map(is_none, column), np.bool_, len(column))
        values = numbers(field, flat, np.zeros(len(flat), np.bool_), self.binary2)
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

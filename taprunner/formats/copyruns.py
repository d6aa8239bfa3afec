"""Runs of binary COPY rows that share one layout, read in place with numpy.

A binary COPY row is a 16-bit field count and, per field, a 32-bit length (-1
for NULL) and the value. When consecutive rows have the same lengths (no NULL
appears or disappears, every text is as long as in the row before), they all
have the same size, so the run is a strided array over the COPY bytes: each
field is one strided numpy view, without gathering anything (compare the
candidate chain of :mod:`taprunner.formats.pgbinary`, which any layout takes).
Catalogues are often like that for thousands of rows: numbers without NULLs,
identifiers of one length (the demo's ``'DEMO ' || id`` changes length only at
each power of ten).

:func:`find_run` reads the first row's layout and checks, in growing windows,
that the rows after it have the same field count and lengths. By induction the
run's rows are then true rows: the first starts where a row starts, and each
checked row is as long as the first, so the next starts one stride on.

Each run is a batch of its own, with a fixed cost, so :func:`runs` takes a run
as it lies only if it is long (:data:`MIN_RUN`) or reaches the end of the
bytes. A few short runs before a long one (a NULL now and then, a text one
byte longer from a power of ten on) are read together the general way, in one
batch; after more short runs than that, all the rest is.
"""

from __future__ import annotations

import struct
import sys
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["MIN_RUN", "CopyRun", "find_run", "runs"]

#: Fewest rows of a run that stops before the end of the bytes and is not
#: followed by a long one.
MIN_RUN = 1024
#: Short runs in a row looked through for a long one after them.
_MAX_SHORT = 4
#: Rows checked first; each further window is twice the one before.
_FIRST_WINDOW = 64
_COUNT = struct.Struct(">h")
_LENGTH = struct.Struct(">i")
_U2 = np.dtype(np.uint16)
_U4 = np.dtype(np.uint32)


class CopyRun(NamedTuple):
    """``rows`` rows of ``stride`` bytes each from ``start`` of ``data``, with
    the same ``lengths`` (per field its value's bytes, -1 for NULL); field i's
    value is at ``offsets[i]`` within a row."""

    data: bytes
    start: int
    rows: int
    stride: int
    lengths: tuple[int, ...]
    offsets: tuple[int, ...]

    @property
    def end(self) -> int:
        """Where the run's last row ends in ``data``."""
        return self.start + self.rows * self.stride

    def field(self, index: int, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
        """Field ``index`` of each row as one ``dtype`` element (a strided view)."""
        return np.ndarray(
            (self.rows,),
            dtype,
            self.data,
            self.start + self.offsets[index],
            (self.stride,),
        )

    def field_bytes(self, index: int) -> npt.NDArray[np.uint8]:
        """Field ``index``'s value bytes (rows x its length; a strided view)."""
        size = max(self.lengths[index], 0)
        if not size or not self.rows:
            return np.zeros((self.rows, size), np.uint8)
        return np.ndarray(
            (self.rows, size),
            np.uint8,
            self.data,
            self.start + self.offsets[index],
            (self.stride, 1),
        )

    @property
    def reaches_end(self) -> bool:
        """Whether fewer bytes than a row of this layout follow the run (a cut
        row, a shorter row or the trailer)."""
        return self.end + self.stride > len(self.data)

    def head(self, count: int) -> CopyRun:
        """The first ``count`` rows."""
        return self._replace(rows=min(count, self.rows))


def _layout(
    data: bytes, start: int, widths: list[int | None]
) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """The lengths, value offsets and size of the row at ``start``; None if it
    is not a whole row of these columns (the general decoder tells why)."""
    size = len(data)
    if size - start < 2 or _COUNT.unpack_from(data, start)[0] != len(widths):
        return None
    at = start + 2
    lengths: list[int] = []
    offsets: list[int] = []
    for width in widths:
        if size < at + 4:
            return None
        length = _LENGTH.unpack_from(data, at)[0]
        if length < -1 or (width is not None and length not in (-1, width)):
            return None
        lengths.append(length)
        offsets.append(at + 4 - start)
        at += 4 + max(length, 0)
    if at > size:
        return None
    return tuple(lengths), tuple(offsets), at - start


def find_run(data: bytes, start: int, widths: list[int | None]) -> CopyRun | None:
    """The rows from ``start`` (where a row starts) that share its layout (at
    least that row); None if no whole row of these columns starts there.

    ``widths``: each column's value bytes (None: text, any length).
    """
    layout = _layout(data, start, widths)
    if layout is None:
        return None
    lengths, offsets, stride = layout
    rows = (len(data) - start) // stride
    run = CopyRun(data, start, rows, stride, lengths, offsets)
    if rows > 1:  # rows of many layouts: the next one tells, cheaply
        second = _layout(data, start + stride, widths)
        if second is None or second[0] != lengths:
            return run.head(1)
    # A first window, then the rest: a run that breaks early costs little, and
    # a long one is checked in one pass.
    for first, upto in ((2, min(rows, _FIRST_WINDOW)), (_FIRST_WINDOW, rows)):
        if first >= upto:
            break
        other = _first_other(run, first, upto)
        if other is not None:
            return run.head(other)
    return run


def _first_other(run: CopyRun, first: int, upto: int) -> int | None:
    """The first row in [first, upto) of another layout than the run's."""
    data, stride = run.data, run.stride
    base = run.start + first * stride
    count = upto - first
    # Compared as the native integers of the same bytes: no byte swapping.
    same = np.ndarray((count,), _U2, data, base, (stride,)) == _native(
        len(run.lengths), 2
    )
    for length, offset in zip(run.lengths, run.offsets, strict=True):
        heads = np.ndarray((count,), _U4, data, base + offset - 4, (stride,))
        same &= heads == _native(length, 4)
    if same.all():
        return None
    return first + int(np.argmin(same))


def _native(value: int, size: int) -> int:
    """The native unsigned integer whose bytes are ``value`` big-endian."""
    raw = value.to_bytes(size, "big", signed=True)
    return int.from_bytes(raw, sys.byteorder)


def runs(
    data: bytes, start: int, widths: list[int | None], min_run: int = MIN_RUN
) -> tuple[list[CopyRun | tuple[int, int]], int]:
    """What to take from ``start`` on (see the module's notes): runs, and byte
    ranges (start, end) of a few short runs before a long one, to be read the
    general way in one batch; and where the rows after them start."""
    taken: list[CopyRun | tuple[int, int]] = []
    shorts = 0
    first = at = start
    while (run := find_run(data, at, widths)) is not None:
        if run.rows < min_run and not run.reaches_end:
            shorts += 1
            if shorts > _MAX_SHORT:
                break
        else:
            if shorts:
                taken.append((first, run.start))
                shorts = 0
            taken.append(run)
            first = run.end
        at = run.end
    return taken, first

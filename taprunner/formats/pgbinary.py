"""PostgreSQL's binary COPY rows decoded column by column with numpy.

``COPY (query) TO STDOUT (FORMAT binary)`` sends each row as a 16-bit field
count and, per field, a 32-bit length (-1 for NULL) and the value in
PostgreSQL's binary send format: big-endian, as VOTable's binary
serializations want it. :class:`BinaryCopyDecoder` cuts the byte stream into
rows and gathers each column's values without a Python object per row or value;
the encoders (:mod:`taprunner.formats.votable`, :mod:`taprunner.formats.parquet`)
take the resulting :class:`CopyBatch` as it is.

Rows have variable lengths (text, NULLs), so where each row starts depends on
all the rows before it. Instead of walking them one by one, every position
holding the field count is a candidate start; each candidate's field lengths
are read in one vectorised pass per column (a length must be -1 or the type's
width), giving where its row would end. The true rows are the chain from the
first row through those ends; when every valid candidate lies on that chain
(the rule: a candidate inside a value is almost always refuted by its lengths),
the chain is read off at once, else it is walked candidate by candidate.
Before that, a long run of rows of one layout (:mod:`.copyruns`) is taken as
it lies, without candidates; a chunk may so give several batches.

Types: :data:`COPY_WIDTHS` (integers, floats, booleans, text).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from taprunner.formats.copyruns import MIN_RUN, CopyRun, runs
from taprunner.formats.pgtypes import PLAIN_TYPES

__all__ = [
    "COPY_WIDTHS",
    "BinaryCopyDecoder",
    "BrokenCopy",
    "CopyBatch",
    "CopyColumn",
    "CopyRows",
    "text_bytes",
]

#: PostgreSQL types (asyncpg names) this module decodes: value bytes (None: any).
COPY_WIDTHS = {name: facts.width for name, facts in PLAIN_TYPES.items()}
#: Texts of a batch up to this many bytes are kept padded, rows x the longest
#: (cheaper to gather and to pack than one index per byte).
PADDED_TEXT = 256
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_HEADER = len(_SIGNATURE) + 8  # flags and the header extension's length


class BrokenCopy(ValueError):
    """The bytes are not binary COPY rows of the expected columns (the table
    changed, or the stream was cut)."""


class CopyColumn(NamedTuple):
    """One column of a batch: ``values`` are, for a fixed-width type, the rows'
    big-endian value bytes (rows x width; a NULL row's bytes are undefined), for
    text the values' UTF-8 bytes, either padded (rows x the longest; bytes past
    a value's length undefined) or one after the other (1-d, see
    :func:`text_bytes`); ``lengths`` (text only) each row's byte count (0 for
    NULL)."""

    nulls: npt.NDArray[np.bool_]
    values: npt.NDArray[np.uint8]
    lengths: npt.NDArray[np.int64] | None = None


class CopyRows(NamedTuple):
    """Where a batch's rows are in the COPY bytes: each row's start, and per
    field where its length is (the value follows it) and that length (-1 for
    NULL)."""

    data: bytes
    starts: npt.NDArray[np.int64]
    heads: list[npt.NDArray[np.int64]]
    lengths: list[npt.NDArray[Any]]
    widths: list[int | None]

    def head(self, count: int) -> CopyRows:
        return self._replace(
            starts=self.starts[:count],
            heads=[h[:count] for h in self.heads],
            lengths=[n[:count] for n in self.lengths],
        )


class CopyBatch:
    """Whole rows of a binary COPY stream: :attr:`columns` (gathered on first
    use) and, from the decoder, where they are in the bytes: :attr:`source`
    (any rows) or :attr:`run` (rows of one layout, see :mod:`.copyruns`)."""

    def __init__(
        self,
        rows: int,
        columns: list[CopyColumn] | None = None,
        *,
        source: CopyRows | None = None,
        run: CopyRun | None = None,
        widths: list[int | None] | None = None,
    ) -> None:
        if columns is None and source is None and (run is None or widths is None):
            raise ValueError("a batch needs its columns or their source")
        self.rows = rows
        self.source = source
        self.run = run
        self._widths = widths
        self._columns = columns

    @property
    def columns(self) -> list[CopyColumn]:
        if self._columns is None:
            if self.run is not None:
                assert self._widths is not None
                self._columns = _run_columns(self.run, self._widths)
            else:
                assert self.source is not None
                rows = self.source
                self._columns = [
                    _column(rows.data, rows.heads[i], rows.lengths[i], width)
                    for i, width in enumerate(rows.widths)
                ]
        return self._columns

    def text_lengths(self) -> list[npt.NDArray[np.int64]]:
        """The bytes of each text column's values (NULL: -1 or 0)."""
        if self.run is not None and self._columns is None:
            assert self._widths is not None
            return [
                np.full(self.rows, length, np.int64)
                for length, w in zip(self.run.lengths, self._widths, strict=True)
                if w is None
            ]
        if self.source is not None:
            rows = self.source
            return [
                n for n, w in zip(rows.lengths, rows.widths, strict=True) if w is None
            ]
        return [c.lengths for c in self.columns if c.lengths is not None]

    def head(self, count: int) -> CopyBatch:
        """The first ``count`` rows."""
        if count >= self.rows:
            return self
        if self.run is not None and self._columns is None:
            return CopyBatch(count, run=self.run.head(count), widths=self._widths)
        if self.source is not None and self._columns is None:
            return CopyBatch(count, source=self.source.head(count))
        columns = []
        for column in self.columns:
            if column.lengths is None:
                columns.append(CopyColumn(column.nulls[:count], column.values[:count]))
            elif column.values.ndim == 2:
                columns.append(
                    CopyColumn(
                        column.nulls[:count],
                        column.values[:count],
                        column.lengths[:count],
                    )
                )
            else:
                size = int(column.lengths[:count].sum())
                columns.append(
                    CopyColumn(
                        column.nulls[:count],
                        column.values[:size],
                        column.lengths[:count],
                    )
                )
        return CopyBatch(count, columns)


class BinaryCopyDecoder:
    """Turns the chunks of a binary COPY stream into :class:`CopyBatch` es.

    ``pg_types``: the columns' PostgreSQL types (keys of :data:`COPY_WIDTHS`).
    A row cut by a chunk's end waits for the next chunk. ``min_run``: the
    fewest rows of one layout taken as they lie, unless they run to the
    chunk's end (see :func:`~.copyruns.find_run`; None: every row goes the
    general way, which the tests compare with).
    """

    def __init__(self, pg_types: list[str], *, min_run: int | None = MIN_RUN) -> None:
        self._widths = [COPY_WIDTHS[t] for t in pg_types]
        self._min_run = min_run
        self._pending = b""
        self._started = False
        self.ended = False
        """Whether the stream's trailer was seen."""

    def feed(self, chunk: bytes) -> list[CopyBatch]:
        """The whole rows completed by ``chunk``, in one or more batches (long
        runs of one layout apart from the rest), in order."""
        if self.ended:
            if chunk:
                raise BrokenCopy("data after the binary COPY trailer")
            return []
        data = self._pending + chunk if self._pending else chunk
        start = 0
        if not self._started:
            if len(data) < _HEADER:
                self._pending = data
                return []
            if data[: len(_SIGNATURE)] != _SIGNATURE:
                raise BrokenCopy("not a binary COPY stream")
            start = _HEADER + int.from_bytes(data[_HEADER - 4 : _HEADER], "big")
            if len(data) < start:
                self._pending = data
                return []
            self._started = True
        batches: list[CopyBatch] = []
        end = start
        if self._min_run is not None:
            taken, end = runs(data, start, self._widths, self._min_run)
            for run in taken:
                if isinstance(run, CopyRun):
                    batches.append(CopyBatch(run.rows, run=run, widths=self._widths))
                else:  # short runs: their bytes the general way
                    batch, _ = _decode(data[run[0] : run[1]], 0, self._widths)
                    assert batch is not None
                    batches.append(batch)
        batch, end = _decode(data, end, self._widths)
        if batch is not None:
            batches.append(batch)
        rest = data[end : end + 2]
        if rest == b"\xff\xff":
            self.ended = True
            if len(data) > end + 2:
                raise BrokenCopy("data after the binary COPY trailer")
            self._pending = b""
        else:
            self._pending = data[end:]
        return batches

    @property
    def pending(self) -> bytes:
        """The bytes of a row not yet complete (or the trailer's start)."""
        return self._pending

    def finish(self) -> None:
        """The stream is over: it must have ended with its trailer."""
        if not self.ended:
            raise BrokenCopy("the binary COPY stream ended inside a row")


def _views(data: bytes, width: int) -> npt.NDArray[np.uint8]:
    """Every ``width`` bytes of ``data`` starting at each position (rows x width)."""
    count = max(0, len(data) - width + 1)
    return np.ndarray((count, width), np.uint8, data, 0, (1, 1))


def _decode(
    data: bytes, start: int, widths: list[int | None]
) -> tuple[CopyBatch | None, int]:
    """The whole rows of ``data`` from ``start`` on, and where they end."""
    size = len(data)
    if size - start < 6:
        return None, start
    count16 = np.ndarray((size - 1,), ">i2", data, 0, (1,))
    starts = np.flatnonzero(count16[start:] == len(widths)) + start
    if not starts.size or starts[0] != start:
        _check_first(data, start, widths)
        return None, start
    length32 = np.ndarray((size - 3,), ">i4", data, 0, (1,))
    valid = np.ones(starts.size, np.bool_)
    at = starts + 2
    heads: list[npt.NDArray[np.int64]] = []
    lengths: list[npt.NDArray[Any]] = []
    for width in widths:
        inside = at <= size - 4
        length = length32[np.where(inside, at, 0)]
        if width is None:
            ok = length >= -1
        else:
            ok = (length == width) | (length == -1)
        valid &= inside & ok
        length = np.where(valid, length, 0)
        heads.append(at)
        lengths.append(length)
        at = at + 4 + np.maximum(length, 0)
    valid &= at <= size
    rows = _chain(starts, at, valid, start)
    if rows is None:
        _check_first(data, start, widths)
        return None, start
    end = int(at[rows[-1]])
    source = CopyRows(
        data, starts[rows], [h[rows] for h in heads], [n[rows] for n in lengths], widths
    )
    return CopyBatch(int(rows.size), source=source), end


def _chain(
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    valid: npt.NDArray[np.bool_],
    first: int,
) -> npt.NDArray[np.int64] | None:
    """Indexes (into ``starts``) of the rows from ``first`` on, each starting
    where the one before ends; None if the row at ``first`` is not complete."""
    index = np.flatnonzero(valid)
    if not index.size or starts[index[0]] != first:
        return None
    if np.array_equal(ends[index[:-1]], starts[index[1:]]):
        return index  # every valid candidate is a row: the common case
    where = {int(starts[i]): int(i) for i in index}
    chain = []
    at = first
    while at in where:
        i = where[at]
        chain.append(i)
        at = int(ends[i])
    return np.array(chain, np.int64)


def _check_first(data: bytes, start: int, widths: list[int | None]) -> None:
    """Raise BrokenCopy if the row at ``start`` is neither the trailer nor a
    row of these columns, as far as ``data`` holds it."""
    if data[start : start + 2] in (b"\xff\xff", b"\xff"):
        return
    if len(data) - start >= 2:
        if int.from_bytes(data[start : start + 2], "big") != len(widths):
            raise BrokenCopy("the rows have other columns than described")
    at = start + 2
    for width in widths:
        if len(data) < at + 4:
            return
        length = int.from_bytes(data[at : at + 4], "big", signed=True)
        if length < -1 or (width is not None and length not in (-1, width)):
            raise BrokenCopy("the rows have other columns than described")
        at += 4 + max(length, 0)


def _column(
    data: bytes,
    heads: npt.NDArray[np.int64],
    lengths: npt.NDArray[Any],
    width: int | None,
) -> CopyColumn:
    nulls = lengths < 0
    if width is not None:
        views = _views(data, width)
        if not views.size:  # only NULLs in a few bytes
            return CopyColumn(nulls, np.zeros((len(heads), width), np.uint8))
        # A NULL has no value bytes (the row may end there): any bytes will do.
        return CopyColumn(nulls, views[np.where(nulls, 0, heads + 4)])
    sizes = np.maximum(lengths, 0).astype(np.int64)
    longest = int(sizes.max()) if sizes.size else 0
    if longest == 0:
        return CopyColumn(nulls, np.empty((len(sizes), 0), np.uint8), sizes)
    if longest <= PADDED_TEXT:
        return CopyColumn(nulls, _padded(data, heads + 4, longest), sizes)
    ends = np.cumsum(sizes)
    # Byte i of value r comes from heads[r] + 4 + i: one index per text byte.
    shift = np.repeat(heads + 4 - (ends - sizes), sizes)
    where = np.arange(int(ends[-1]), dtype=np.int64) + shift
    return CopyColumn(nulls, np.frombuffer(data, np.uint8)[where], sizes)


def _run_columns(run: CopyRun, widths: list[int | None]) -> list[CopyColumn]:
    """The columns of a run (values as strided views of the COPY bytes)."""
    columns = []
    for i, width in enumerate(widths):
        nulls = np.full(run.rows, run.lengths[i] < 0)
        if width is not None:
            values = run.field_bytes(i) if run.lengths[i] >= 0 else None
            if values is None:
                values = np.zeros((run.rows, width), np.uint8)
            columns.append(CopyColumn(nulls, values))
        else:
            size = max(run.lengths[i], 0)
            lengths = np.full(run.rows, size, np.int64)
            columns.append(CopyColumn(nulls, run.field_bytes(i), lengths))
    return columns


def _padded(data: bytes, starts: npt.NDArray[np.int64], width: int) -> Any:
    """``width`` bytes from each of ``starts`` (rows x width; past the end of
    ``data``, zeros)."""
    views = _views(data, width)
    inside = starts < len(views)
    if inside.all():
        return views[starts]
    padded = np.zeros((len(starts), width), np.uint8)
    padded[inside] = views[starts[inside]]
    for row in np.flatnonzero(~inside).tolist():
        tail = data[int(starts[row]) : int(starts[row]) + width]
        padded[row, : len(tail)] = np.frombuffer(tail, np.uint8)
    return padded


def text_bytes(column: CopyColumn) -> npt.NDArray[np.uint8]:
    """A text column's values one after the other (UTF-8, NULLs empty)."""
    if column.values.ndim == 1:
        return column.values
    assert column.lengths is not None
    width = column.values.shape[1]
    if not len(column.lengths) or int(column.lengths.min()) == width:
        return np.ascontiguousarray(column.values).reshape(-1)  # no padding
    return column.values[np.arange(width) < column.lengths[:, None]]

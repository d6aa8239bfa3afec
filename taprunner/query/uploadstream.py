"""An uploaded VOTable read as it streams: memory one block, whatever its size.

:func:`open_upload` reads the first TABLE's FIELDs (:mod:`taprunner.load`'s
readers, the ones ``aiouws tap load`` uses), checks their names, types and
declared value sizes, and gives the rows either as PostgreSQL binary COPY data
(:meth:`UploadStream.copy_data`: numeric scalars in BINARY or BINARY2, encoded
with numpy, :mod:`.uploadcopy`) or as record batches
(:meth:`UploadStream.records`: any other table, TABLEDATA included). The values
are those :func:`.uploadparse.parse_votable` (astropy, the whole table at once)
gives: NaN is NULL, timestamps are UTC, a ``char`` column of ASCII values stays
char, geometry values are checked (sizes, latitudes, radii, infinities).

The size limits hold as for the whole-table parse, with the same messages: a
FIELD's declared value size before any row is read, then the values (rows x
FIELDs), their bytes at the declared sizes and the rows (``max_rows``) as rows
arrive; past a limit the rest is only counted, for the message. A VOTable
serialised as FITS goes to the whole-table parse (astropy has no row iterator).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from taprunner.errors import TapUsageError
from taprunner.query.uploadcopy import COPY_HEADER, COPY_TRAILER, FixedRows, blocks
from taprunner.query.uploadcopy import fixed_rows as fixed_encoder
from taprunner.query.uploadlimits import (
    UploadLimits,
    check_fields,
    check_rows,
    declared_bytes,
)
from taprunner.query.uploadparse import (
    ARRAY_TYPES,
    SCALAR_TYPES,
    TEXT_TYPES,
    ParsedUpload,
    check_geometry,
    check_names,
    geometry_xtype,
    timestamp,
)

__all__ = ["UploadStream", "open_upload"]

Record = tuple[object, ...]
Fix = Callable[[object], object]


@dataclass(eq=False)
class UploadStream:
    """One uploaded table being read: its columns and SQL types, then its rows."""

    name: str
    columns: tuple[str, ...]
    sql_types: tuple[str, ...]
    geometry: tuple[str | None, ...]
    #: Per column: a char column whose values were all ASCII so far.
    char: list[bool]
    #: Rows read so far.
    rows: int
    _path: Path
    _head: Any
    _fixed: FixedRows | None
    _fixes: list[Fix | None]
    _declared: list[tuple[str, int]]
    _limits: UploadLimits
    _max_rows: int

    @property
    def binary_copy(self) -> bool:
        """Whether the rows come as COPY data (:meth:`copy_data`), not records."""
        return self._fixed is not None

    def parsed(self) -> ParsedUpload:
        """What :mod:`.uploadgeom` needs once the rows are in (no records)."""
        return ParsedUpload(
            self.columns, self.sql_types, [], tuple(self.char), self.geometry
        )

    def copy_data(self) -> Iterator[bytes]:
        """Binary COPY data: header, a chunk per block of rows, trailer."""
        fixed = self._fixed
        assert fixed is not None
        yield COPY_HEADER
        chunks = self._guarded(self._stream_bytes())
        parts = blocks(chunks, fixed.row_bytes)
        for block in parts:
            rows = len(block) // fixed.row_bytes
            if rows * fixed.row_bytes != len(block):
                self._invalid(
                    f"row {self.rows + 1}: the STREAM ends inside the row"
                    " (file truncated?)"
                )
            self._count(rows, lambda: sum(len(b) for b in parts) // fixed.row_bytes)
            yield fixed.encode(block)
        yield COPY_TRAILER

    def records(self, batch: int) -> Iterator[list[Record]]:
        """Record batches of at most ``batch`` rows, values as the whole-table
        parse gives them."""
        source = self._record_batches(batch)
        fixes = list(enumerate(self._fixes))
        for records in source:
            first = self.rows + 1
            self._count(len(records), lambda: sum(len(b) for b in source))
            if any(fix is not None for _, fix in fixes):
                records = [self._fix(record, fixes) for record in records]
            self._check_geometry(records, first)
            yield records

    # ------------------------------------------------------------------------

    def _fix(self, record: Record, fixes: list[tuple[int, Fix | None]]) -> Record:
        values = list(record)
        for i, fix in fixes:
            if fix is not None and values[i] is not None:
                values[i] = fix(values[i])
        return tuple(values)

    def _check_geometry(self, records: list[Record], first: int) -> None:
        """Check the geometry values of ``records``, rows ``first`` on."""
        for i, xtype in enumerate(self.geometry):
            if xtype is not None:
                for row, record in enumerate(records, first):
                    check_geometry(self.name, self.columns[i], xtype, record[i], row)

    def _stream_bytes(self) -> Iterator[bytes]:
        from taprunner.load.binary import stream_bytes

        return stream_bytes(self._path)

    def _record_batches(self, batch: int) -> Iterator[list[Record]]:
        from taprunner.load.binary import stream_binary
        from taprunner.load.tabledata import stream_rows

        if self._head.serialisation in ("BINARY", "BINARY2"):
            reader = stream_binary(self._path, self._head, batch)
        else:
            reader = stream_rows(self._path, self._head, batch)
        return self._guarded(reader)

    def _guarded(self, items: Iterator[Any]) -> Iterator[Any]:
        """``items``, a reader's errors made the client's."""
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except TapUsageError:
                raise
            except Exception as exc:  # noqa: BLE001  (the client's bytes)
                self._invalid(str(exc), exc)
            yield item

    def _count(self, rows: int, rest: Callable[[], int]) -> None:
        """Count ``rows`` more; past a limit, count the ``rest`` and refuse."""
        self.rows += rows
        cells = self.rows * len(self.columns)
        data = self.rows * sum(size for _, size in self._declared)
        if (
            self.rows <= self._max_rows
            and cells <= self._limits.cells
            and data <= self._limits.data_bytes
        ):
            return
        self.rows += rest()
        check_rows(self.name, self.rows, self._declared, self._limits)
        raise TapUsageError(
            f"upload {self.name!r} has {self.rows} rows, more than the limit of"
            f" {self._max_rows}"
        )

    def _invalid(self, message: str, cause: BaseException | None = None) -> None:
        raise TapUsageError(
            f"upload {self.name!r} is not a valid VOTable: {message}"
        ) from cause


def open_upload(
    name: str, path: Path, max_rows: int, limits: UploadLimits
) -> UploadStream | None:
    """Upload ``name`` (the VOTable ``path``) opened for streaming; None for a
    VOTable serialised as FITS (parsed whole instead).

    Raises
    ------
    TapUsageError
        Not a VOTable, bad or repeated column names, unsupported types, or a
        FIELD declaring values larger than ``tap_value_bytes``.
    """
    from taprunner.load.tabledata import read_head

    try:
        head = read_head(path)
    except Exception as exc:  # noqa: BLE001  (astropy's, expat's: the client's)
        raise TapUsageError(f"upload {name!r} is not a valid VOTable: {exc}") from exc
    if head.serialisation not in (None, "TABLEDATA", "BINARY", "BINARY2"):
        return None
    columns = tuple(c.name for c in head.columns)
    if not columns:
        raise TapUsageError(f"upload {name!r} is not a valid VOTable: no FIELDs")
    check_names(name, columns)
    declared = [
        (c.name, declared_bytes(c.datatype, size))
        for c, size in zip(head.columns, head.arraysizes, strict=True)
    ]
    types = tuple(_sql_type(name, c) for c in head.columns)
    check_fields(name, declared, limits)
    geometry = tuple(
        geometry_xtype(c.xtype or "", t)
        for c, t in zip(head.columns, types, strict=True)
    )
    char = [
        c.datatype == "char" and t == "text"
        for c, t in zip(head.columns, types, strict=True)
    ]
    binary = head.serialisation in ("BINARY", "BINARY2")
    fixed = None
    if binary:
        fixed = fixed_encoder(
            [c.datatype for c in head.columns],
            head.arraysizes,
            head.nulls,
            head.serialisation == "BINARY2",
        )
    stream = UploadStream(
        name=name,
        columns=columns,
        sql_types=types,
        geometry=geometry,
        char=char,
        rows=0,
        _path=path,
        # timestamps read as text, converted here (aware, as parse_votable's)
        _head=replace(
            head,
            columns=[
                replace(c, xtype=None) if t == "timestamptz" else c
                for c, t in zip(head.columns, types, strict=True)
            ],
        ),
        _fixed=fixed,
        _fixes=[],
        _declared=declared,
        _limits=limits,
        _max_rows=max_rows,
    )
    stream._fixes = [_fix(stream, i, t, binary) for i, t in enumerate(types)]
    return stream


def _sql_type(name: str, column: Any) -> str:
    """The SQL type ``parse_votable`` gives a FIELD (its error messages too)."""
    if column.datatype in TEXT_TYPES:
        if column.arraysize is not None and "x" in column.arraysize:
            raise TapUsageError(
                f"upload {name!r}: column {column.name!r}: arrays of "
                "strings are not supported"
            )
        if column.xtype == "timestamp":
            return "timestamptz"
        return "text"
    if column.datatype not in SCALAR_TYPES:
        raise TapUsageError(
            f"upload {name!r}: column {column.name!r} has the "
            f"unsupported datatype {column.datatype}"
        )
    if column.arraysize is not None:
        return ARRAY_TYPES[column.datatype]
    return SCALAR_TYPES[column.datatype]


def _fix(stream: UploadStream, i: int, sql_type: str, binary: bool) -> Fix | None:
    """What turns a reader's value of column ``i`` into parse_votable's."""
    name, column = stream.name, stream.columns[i]
    if sql_type == "timestamptz":
        return lambda text: timestamp(name, column, str(text))
    if sql_type in ("real", "double precision"):
        return lambda value: None if math.isnan(value) else value  # type: ignore[arg-type]
    if sql_type == "double precision[]":

        def array(value: Any) -> object:
            values = [None if v != v else v for v in value]
            return None if all(v is None for v in values) else values

        return array
    if stream.char[i]:

        def char(text: Any) -> object:
            if text.isascii():
                return text
            stream.char[i] = False
            # astropy decodes a binary char's bytes as UTF-8
            return text.encode("latin-1").decode("utf-8", "replace") if binary else text

        return char
    return None

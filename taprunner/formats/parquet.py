"""VOParquet results: Apache Parquet with the VOTable header in its metadata.

IVOA Note VOParquet 1.0 (what astropy reads as ``format="parquet.votable"``):
the file's key-value metadata holds ``IVOA.VOTable-Parquet.version`` = ``1.0``
and ``IVOA.VOTable-Parquet.content``, a VOTable document with the result's
FIELDs (the same as our VOTable output's) and INFOs and an empty TABLEDATA. The
INFOs are those of the VOTable result, and a trailing QUERY_STATUS says
OVERFLOW or ERROR: the metadata is written at the end of the file, with the
footer, so it knows how the query ended. Beside them, ``table::len::NAME``
gives the longest string of each text column (in UTF-8 bytes, at least its
characters): astropy's Parquet reader needs
it for a column with NULLs (it measures the strings otherwise, and fails on
None).

Rows arrive as Arrow batches (the columnar path) or asyncpg rows (the cursor
and fetch paths); pyarrow's :class:`ParquetWriter` writes them in row groups of
at most :data:`ROW_GROUP_ROWS` rows, and the bytes leave after each row group:
memory is bounded by one row group whatever the size of the result.

pyarrow is an optional dependency (the ``parquet`` extra), imported by this
module only; the format registry imports it when a Parquet result is asked for,
never on a runner's start (pyarrow costs about 45 MB).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taprunner.formats.fields import FieldSpec, Row, text_values
from taprunner.formats.pgbinary import CopyBatch, CopyColumn, text_bytes
from taprunner.formats.votable import VOTableEncoder

__all__ = ["ParquetEncoder"]

#: Rows per row group (at most): big enough for columnar reads, small enough
#: that one group's arrays stay a few MB. The writer holds several copies of a
#: group while it encodes it (the pending batches, the encoded pages, the bytes
#: out): a 1M-row demo.stars result peaked 26 MB over the runner's pyarrow at
#: 131,072 rows, 16 MB at 32,768, for the same file size and CPU.
ROW_GROUP_ROWS = 32_768
#: Bytes of Arrow data that close a row group before ROW_GROUP_ROWS (wide rows).
ROW_GROUP_BYTES = 8 * 1024 * 1024
VERSION_KEY = "IVOA.VOTable-Parquet.version"
CONTENT_KEY = "IVOA.VOTable-Parquet.content"
#: Where Arrow writers keep a file's Arrow schema (base64 of its IPC message).
ARROW_SCHEMA_KEY = "ARROW:schema"

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "short": pa.int16(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "unsignedByte": pa.uint8(),
}


def arrow_type(field: FieldSpec) -> pa.DataType:
    """The Arrow (Parquet) type of a FIELD's values: scalars, strings, lists
    (fixed-size for a fixed arraysize such as a point's ``2``)."""
    if field.datatype in ("char", "unicodeChar"):
        return pa.string()
    element = _SCALAR_TYPES[field.datatype]
    if field.arraysize is None:
        return element
    if field.arraysize.isdigit():
        return pa.list_(element, int(field.arraysize))
    return pa.list_(element)


class _Chunks:
    """The file object ParquetWriter writes to: keeps the bytes until taken."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def votable_header(
    fields: Sequence[FieldSpec],
    infos: Sequence[tuple[str, str, str | None]],
    longest: dict[int, int],
    *,
    overflow: bool,
    error: str | None,
    cut: str | None,
) -> bytes:
    """The VOTable document of a VOParquet file's metadata: the FIELDs of the
    VOTable result, but a text column's arraysize ``*`` says its longest string
    (``12*``): astropy reads a ``*`` text FIELD as objects, the Parquet column
    as strings, and cannot stack the two."""
    described = list(fields)
    for i, size in longest.items():
        if described[i].arraysize == "*":
            described[i] = replace(described[i], arraysize=f"{max(size, 1)}*")
    votable = VOTableEncoder(described, serialization="tabledata", infos=infos)
    return votable.header() + votable.footer(overflow=overflow, error=error, cut=cut)


class ParquetEncoder:
    """Produces the bytes of one VOParquet file, piece by piece (no I/O).

    A :class:`~taprunner.formats.registry.RowEncoder` (rows from asyncpg) and an
    Arrow encoder (:meth:`encode_arrow`, batches from the columnar path).
    """

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        *,
        infos: Sequence[tuple[str, str, str | None]] = (),
    ) -> None:
        self.fields = list(fields)
        self._votable = VOTableEncoder(
            self.fields, serialization="tabledata", infos=infos
        )
        self.schema = pa.schema([pa.field(f.name, arrow_type(f)) for f in self.fields])
        self._out = _Chunks()
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._strings = [
            i for i, f in enumerate(self.fields) if arrow_type(f) == pa.string()
        ]
        self._longest = dict.fromkeys(self._strings, 0)

    def header(self) -> bytes:
        """The file's start (Parquet's magic number)."""
        self._writer = pq.ParquetWriter(
            self._out,
            self.schema,
            compression="snappy",
            write_statistics=False,
            # Dictionary encoding hashes every value of a row group: +60 MB of
            # runner memory for 1M rows of unique numbers, for little gain.
            use_dictionary=False,
            store_schema=False,  # written by footer(), with the metadata
        )
        return self._out.take()

    def encode(self, rows: Sequence[Row]) -> bytes:
        """Take a batch of rows (field order, ``None`` for NULL)."""
        if not rows:
            return b""
        columns = [
            _column(field, [row[i] for row in rows], self.schema.field(i).type)
            for i, field in enumerate(self.fields)
        ]
        return self._add(pa.RecordBatch.from_arrays(columns, schema=self.schema))

    def encode_arrow(self, batch: Any, count: int) -> bytes:
        """Take the first ``count`` rows of an Arrow batch (a struct array with
        one child per FIELD, as the ADBC driver gives it: any object with the
        Arrow PyCapsule interface)."""
        record = pa.record_batch(batch).slice(0, count)
        if record.schema.names != self.schema.names:
            record = record.rename_columns(self.schema.names)
        if record.schema != self.schema:
            record = record.cast(self.schema)
        return self._add(record)

    def encode_copy(self, batch: CopyBatch) -> bytes:
        """Take a decoded binary COPY batch (:mod:`taprunner.formats.pgbinary`)."""
        columns = [
            _copy_column(column, self.schema.field(i).type)
            for i, column in enumerate(batch.columns)
        ]
        return self._add(pa.RecordBatch.from_arrays(columns, schema=self.schema))

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes:
        """The last row group, the VOTable header (with the query's status:
        ``cut`` says why a byte limit cut the result short) and Parquet's footer."""
        self._flush()
        assert self._writer is not None, "header() first"
        document = self._header(overflow=overflow, error=error, cut=cut)
        lengths = {
            f"table::len::{self.fields[i].name}": str(n)
            for i, n in self._longest.items()
        }
        metadata = {
            **lengths,
            VERSION_KEY: "1.0",
            CONTENT_KEY: document.decode("utf-8"),
        }
        # The Arrow schema (fixed-size lists, int16, ...) as pyarrow itself keeps
        # it, but written at the end, with the metadata only known there.
        arrow_schema = self.schema.with_metadata(metadata).serialize()
        metadata[ARROW_SCHEMA_KEY] = base64.b64encode(arrow_schema).decode("ascii")
        self._writer.add_key_value_metadata(metadata)
        self._writer.close()
        return self._out.take()

    def _header(self, *, overflow: bool, error: str | None, cut: str | None) -> bytes:
        """The VOTable document of the metadata (see :func:`votable_header`)."""
        return votable_header(
            self.fields,
            self._votable.infos,
            self._longest,
            overflow=overflow,
            error=error,
            cut=cut,
        )

    def _add(self, record: pa.RecordBatch) -> bytes:
        for i in self._strings:
            longest = _longest_bytes(record.column(i))
            if longest > self._longest[i]:
                self._longest[i] = longest
        self._pending.append(record)
        self._pending_rows += record.num_rows
        self._pending_bytes += record.nbytes
        if self._pending_rows >= ROW_GROUP_ROWS or (
            self._pending_bytes >= ROW_GROUP_BYTES
        ):
            self._flush()
        return self._out.take()

    def _flush(self) -> None:
        if not self._pending:
            return
        assert self._writer is not None, "header() first"
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=len(table))
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0


def _longest_bytes(strings: pa.Array) -> int:
    """The longest value of a string array, in UTF-8 bytes (at least its length
    in characters), from its offsets: pyarrow.compute would cost 12 MB more."""
    if len(strings) == 0:
        return 0
    wide = pa.types.is_large_string(strings.type)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int64 if wide else np.int32)[
        strings.offset : strings.offset + len(strings) + 1
    ]
    return int(np.diff(offsets).max())


def _column(field: FieldSpec, values: list[Any], kind: pa.DataType) -> pa.Array:
    """One column of asyncpg values as an Arrow array of ``kind``.

    A NULL fixed-size float array (a point) is written as NaNs, as VOTable's
    binary serializations write it: astropy's Parquet reader cannot make a 2-D
    column of fixed-size lists with NULLs. (A NULL fixed-size integer array,
    declared so by its table's metadata, stays a null.)"""
    if kind == pa.string():
        return pa.array(text_values(values), kind)
    if (
        isinstance(kind, pa.FixedSizeListType)
        and pa.types.is_floating(kind.value_type)
        and None in values
    ):  # integers have no NaN: a NULL integer array stays a null
        nan = [math.nan] * kind.list_size
        values = [nan if v is None else v for v in values]
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass  # numeric (Decimal), tuples (point), bytes: convert
    if pa.types.is_list(kind) or pa.types.is_fixed_size_list(kind):
        return pa.array([None if v is None else list(v) for v in values], kind)
    return pa.array([None if v is None else float(v) for v in values], kind)


def _copy_column(column: CopyColumn, kind: pa.DataType) -> pa.Array:
    """One decoded binary COPY column (big-endian values) as an Arrow array."""
    n = len(column.nulls)
    validity = None
    if column.nulls.any():
        validity = pa.py_buffer(np.packbits(~column.nulls, bitorder="little"))
    if column.lengths is not None:
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(column.lengths, out=offsets[1:])
        if offsets[-1] < 2**31:
            offsets = offsets.astype(np.int32)
        else:
            kind = pa.large_string()
        data = pa.py_buffer(text_bytes(column))
        array = pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(offsets), data])
        return array if array.type == pa.string() else array.cast(pa.string())
    if pa.types.is_boolean(kind):
        bits = np.packbits(column.values[:, 0] != 0, bitorder="little")
        return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(bits)])
    width = column.values.shape[1]
    code = "f" if pa.types.is_floating(kind) else "i"
    values = column.values.view(f">{code}{width}")[:, 0].astype(f"<{code}{width}")
    return pa.Array.from_buffers(kind, n, [validity, pa.py_buffer(values)])

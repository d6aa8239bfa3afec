"""VOParquet from decoded binary COPY batches, written without pyarrow.

pyarrow costs a runner about 38 MB (its import and first use), more than the
runner's whole budget allows; the binary COPY path's columns are simple
(integers, floats, booleans, text), and Parquet's plain encoding of them is
what numpy has at hand: little-endian numbers, bit-packed booleans, texts as
length and bytes, the definition levels of NULLs as one RLE run or bit-packed.
This module writes that directly, uncompressed (the codec would cost more CPU
than the bytes it saves cost to send), with the metadata of
:mod:`taprunner.formats.parquet`: the VOTable header
(``IVOA.VOTable-Parquet.content``) and ``table::len::NAME`` of text columns. A
``short`` column is INT32 annotated INT_16, text BYTE_ARRAY annotated UTF8:
pyarrow and astropy read the same types as from the pyarrow writer's files.

Row groups hold up to :data:`ROW_GROUP_ROWS` rows or :data:`ROW_GROUP_BYTES`
bytes of gathered values, one page per column; memory stays bounded by one row group.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from taprunner.formats.fields import FieldSpec, Row
from taprunner.formats.pgbinary import CopyBatch, CopyColumn, text_bytes
from taprunner.formats.votable import VOTableEncoder

__all__ = ["LiteParquetEncoder", "votable_header"]

ROW_GROUP_ROWS = 32_768
ROW_GROUP_BYTES = 2 * 1024 * 1024
VERSION_KEY = "IVOA.VOTable-Parquet.version"
CONTENT_KEY = "IVOA.VOTable-Parquet.content"
_MAGIC = b"PAR1"
# Parquet's physical types, converted types and encodings (parquet.thrift).
_BOOLEAN, _INT32, _INT64, _FLOAT, _DOUBLE, _BYTE_ARRAY = 0, 1, 2, 4, 5, 6
_UTF8, _INT_16 = 0, 16
_PLAIN, _RLE = 0, 3
#: FIELD datatype -> (physical type, converted type, little-endian numpy type).
_TYPES: dict[str, tuple[int, int | None, str | None]] = {
    "short": (_INT32, _INT_16, "<i4"),
    "int": (_INT32, None, "<i4"),
    "long": (_INT64, None, "<i8"),
    "float": (_FLOAT, None, "<f4"),
    "double": (_DOUBLE, None, "<f8"),
    "boolean": (_BOOLEAN, None, None),
    "char": (_BYTE_ARRAY, _UTF8, None),
    "unicodeChar": (_BYTE_ARRAY, _UTF8, None),
}


def lite_parquet_fields(fields: Sequence[FieldSpec]) -> bool:
    """Whether every FIELD is a scalar this writer takes."""
    return all(
        f.datatype in _TYPES
        and (f.arraysize is None or f.datatype in ("char", "unicodeChar"))
        for f in fields
    )


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


class LiteParquetEncoder:
    """The bytes of one VOParquet file from binary COPY batches (no I/O)."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        *,
        infos: Sequence[tuple[str, str, str | None]] = (),
    ) -> None:
        if not lite_parquet_fields(fields):
            raise TypeError("the light Parquet writer takes scalar columns only")
        self.fields = list(fields)
        self.infos = list(infos)
        self._pending: list[CopyBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._offset = 0
        self._groups: list[bytes] = []  # each row group's thrift struct
        self._rows = 0
        self._longest = {
            i: 0
            for i, f in enumerate(self.fields)
            if _TYPES[f.datatype][0] == _BYTE_ARRAY
        }

    def header(self) -> bytes:
        self._offset = len(_MAGIC)
        return _MAGIC

    def encode(self, rows: Sequence[Row]) -> bytes:
        raise TypeError("the light Parquet writer takes binary COPY batches only")

    def encode_copy(self, batch: CopyBatch) -> bytes:
        """Take a batch; returns a row group's bytes once one is full."""
        for i in self._longest:
            lengths = batch.columns[i].lengths
            if lengths is not None and lengths.size:
                self._longest[i] = max(self._longest[i], int(lengths.max()))
        columns = batch.columns  # kept without the COPY bytes they came from
        self._pending.append(CopyBatch(batch.rows, columns))
        self._pending_rows += batch.rows
        self._pending_bytes += sum(c.values.nbytes for c in columns)
        if self._pending_rows >= ROW_GROUP_ROWS or (
            self._pending_bytes >= ROW_GROUP_BYTES
        ):
            return self._flush()
        return b""

    def footer(
        self,
        *,
        overflow: bool = False,
        error: str | None = None,
        cut: str | None = None,
    ) -> bytes:
        """The last row group and the file's metadata (with the query's status)."""
        data = self._flush()
        document = votable_header(
            self.fields,
            self.infos,
            self._longest,
            overflow=overflow,
            error=error,
            cut=cut,
        )
        metadata = {
            **{
                f"table::len::{self.fields[i].name}": str(n)
                for i, n in self._longest.items()
            },
            VERSION_KEY: "1.0",
            CONTENT_KEY: document.decode("utf-8"),
        }
        meta = _file_metadata(self.fields, self._rows, self._groups, metadata)
        return data + meta + struct.pack("<i", len(meta)) + _MAGIC

    def _flush(self) -> bytes:
        if not self._pending:
            return b""
        batches, self._pending = self._pending, []
        rows, self._pending_rows, self._pending_bytes = self._pending_rows, 0, 0
        parts: list[bytes] = []
        chunks: list[bytes] = []
        start = self._offset
        for i, field in enumerate(self.fields):
            columns = [b.columns[i] for b in batches]
            page = _page(field, columns)
            head = _page_header(len(page), rows)
            chunks.append(
                _column_chunk(field, self._offset, rows, len(head) + len(page))
            )
            parts += [head, page]
            self._offset += len(head) + len(page)
        self._groups.append(
            _struct(
                (1, _list(12, chunks)),
                (2, _i64(self._offset - start)),
                (3, _i64(rows)),
            )
        )
        self._rows += rows
        return b"".join(parts)


# ------------------------------------------------------------------ page data
def _page(field: FieldSpec, columns: list[CopyColumn]) -> bytes:
    """A data page's body: the definition levels, then the plain values."""
    nulls = np.concatenate([c.nulls for c in columns])
    kind, _, little = _TYPES[field.datatype]
    if kind == _BYTE_ARRAY:
        values = b"".join(_texts(c) for c in columns)
    elif kind == _BOOLEAN:
        flags = np.concatenate([c.values[~c.nulls, 0] != 0 for c in columns])
        values = np.packbits(flags, bitorder="little").tobytes()
    else:
        assert little is not None
        big = f">{little[1]}{columns[0].values.shape[1]}"  # int2 for INT32
        values = np.concatenate(
            [c.values[~c.nulls].view(big)[:, 0].astype(little) for c in columns]
        ).tobytes()
    levels = _levels(nulls)
    return struct.pack("<i", len(levels)) + levels + values


def _texts(column: CopyColumn) -> bytes:
    """Plain BYTE_ARRAY values of the non-NULL rows: 4-byte length, bytes."""
    assert column.lengths is not None
    keep = ~column.nulls
    lengths = column.lengths[keep]
    if not lengths.size:
        return b""
    heads = lengths.astype("<i4").view(np.uint8).reshape(-1, 4)
    if column.values.ndim == 2:
        padded = column.values[keep]
        width = 4 + padded.shape[1]
        rows = np.empty((len(lengths), width), np.uint8)
        rows[:, :4] = heads
        rows[:, 4:] = padded
        return bytes(rows[np.arange(width) < 4 + lengths[:, None]])
    data = text_bytes(column)
    ends = np.cumsum(column.lengths)
    starts = (ends - column.lengths)[keep]
    out = bytearray()
    for head, start, size in zip(heads, starts.tolist(), lengths.tolist(), strict=True):
        out += head.tobytes() + data[start : start + size].tobytes()
    return bytes(out)


def _levels(nulls: npt.NDArray[np.bool_]) -> bytes:
    """Definition levels (bit width 1) in the RLE/bit-packed hybrid encoding."""
    if not nulls.any():  # one run of 1s
        return _varint(len(nulls) << 1) + b"\x01"
    groups = (len(nulls) + 7) // 8
    bits = np.packbits(~nulls, bitorder="little").tobytes()
    return _varint(groups << 1 | 1) + bits


# -------------------------------------------------------------- thrift compact
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _i32(n: int) -> tuple[int, bytes]:
    return 5, _zigzag(n)


def _i64(n: int) -> tuple[int, bytes]:
    return 6, _zigzag(n)


def _binary(text: str | bytes) -> tuple[int, bytes]:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return 8, _varint(len(raw)) + raw


def _list(element: int, items: Sequence[bytes]) -> tuple[int, bytes]:
    size = len(items)
    head = bytes([size << 4 | element]) if size < 15 else bytes([0xF0 | element])
    return 9, head + (b"" if size < 15 else _varint(size)) + b"".join(items)


def _struct(*fields: tuple[int, tuple[int, bytes]] | None) -> bytes:
    out = bytearray()
    last = 0
    for item in fields:
        if item is None:
            continue
        number, (kind, payload) = item
        delta = number - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            out += _zigzag(number)[:]
        out += payload
        last = number
    out.append(0)
    return bytes(out)


def _page_header(size: int, rows: int) -> bytes:
    data_page = _struct(
        (1, _i32(rows)), (2, _i32(_PLAIN)), (3, _i32(_RLE)), (4, _i32(_RLE))
    )
    return _struct(
        (1, _i32(0)),  # DATA_PAGE
        (2, _i32(size)),
        (3, _i32(size)),
        (5, (12, data_page)),
    )


def _column_chunk(field: FieldSpec, offset: int, rows: int, size: int) -> bytes:
    kind = _TYPES[field.datatype][0]
    meta = _struct(
        (1, _i32(kind)),
        (2, _list(5, [_zigzag(_PLAIN), _zigzag(_RLE)])),
        (3, _list(8, [_binary(field.name)[1]])),
        (4, _i32(0)),  # UNCOMPRESSED
        (5, _i64(rows)),
        (6, _i64(size)),
        (7, _i64(size)),
        (9, _i64(offset)),
    )
    return _struct((2, _i64(offset)), (3, (12, meta)))


def _file_metadata(
    fields: Sequence[FieldSpec],
    rows: int,
    groups: list[bytes],
    metadata: dict[str, str],
) -> bytes:
    schema = [_struct((4, _binary("schema")), (5, _i32(len(fields))))]
    for field in fields:
        kind, converted, _ = _TYPES[field.datatype]
        schema.append(
            _struct(
                (1, _i32(kind)),
                (3, _i32(1)),  # OPTIONAL
                (4, _binary(field.name)),
                None if converted is None else (6, _i32(converted)),
            )
        )
    pairs = [_struct((1, _binary(k)), (2, _binary(v))) for k, v in metadata.items()]
    return _struct(
        (1, _i32(1)),
        (2, _list(12, schema)),
        (3, _i64(rows)),
        (4, _list(12, groups)),
        (5, _list(12, pairs)),
        (6, _binary("aiouws")),
    )

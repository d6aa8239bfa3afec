"""Runs of one layout (taprunner/formats/copyruns.py) against the general
decoder and against the asyncpg path's packer: binary COPY bytes written as
PostgreSQL writes them (tables made of runs of one layout, with NULLs, NaN,
infinities, booleans, ASCII and other text, cut into chunks anywhere, a row's
middle included) give the same BINARY2 and BINARY rows and the same columns
whichever way they are read."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from taprunner.formats.binpack import BinaryPacker
from taprunner.formats.copypack import pack_copy
from taprunner.formats.fields import FieldSpec, field_for_pg_type
from taprunner.formats.pgbinary import (
    BinaryCopyDecoder,
    CopyBatch,
    CopyColumn,
    text_bytes,
)

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
#: PostgreSQL's binary send format of each type.
_PACK = {
    "int2": struct.Struct(">h").pack,
    "int4": struct.Struct(">i").pack,
    "int8": struct.Struct(">q").pack,
    "float4": struct.Struct(">f").pack,
    "float8": struct.Struct(">d").pack,
    "bool": lambda v: b"\x01" if v else b"\x00",
    "text": lambda v: v.encode(),
}
_BITS = {"int2": 16, "int4": 32, "int8": 64}
TYPES = st.lists(st.sampled_from(sorted(_PACK)), min_size=1, max_size=6)


def _copy(types: list[str], rows: list[tuple[object, ...]]) -> bytes:
    out = [_SIGNATURE]
    for row in rows:
        out.append(struct.pack(">h", len(types)))
        for pg_type, value in zip(types, row, strict=True):
            if value is None:
                out.append(struct.pack(">i", -1))
            else:
                raw = _PACK[pg_type](value)
                out.append(struct.pack(">i", len(raw)) + raw)
    out.append(b"\xff\xff")
    return b"".join(out)


def _value(pg_type: str, text: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    if pg_type in _BITS:
        bits = _BITS[pg_type]
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if pg_type == "float4":
        return st.floats(width=32)
    if pg_type == "float8":
        return st.floats()
    if pg_type == "bool":
        return st.booleans()
    return text


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[tuple[object, ...]]]:
    """Columns and rows in runs: in each run, every column is NULL in all rows
    or in none, and each text is as long (in bytes) in every row; runs of one
    row give any layout."""
    types = draw(TYPES)
    rows: list[tuple[object, ...]] = []
    for _ in range(draw(st.integers(0, 6))):
        count = draw(st.sampled_from([1, 2, 3, 40, 70, 150]))
        makers = []
        for pg_type in types:
            if draw(st.integers(0, 4)) == 0:
                makers.append(st.none())
                continue
            size = draw(st.integers(0, 9))
            text = draw(
                st.sampled_from(
                    [
                        st.text("abcXYZ 019~", min_size=size, max_size=size),
                        st.just("é☃" * (size // 2)),  # not ASCII, same bytes
                        st.just("\x7f" * size),
                    ]
                )
            )
            makers.append(_value(pg_type, text))
        rows += draw(st.lists(st.tuples(*makers), min_size=count, max_size=count))
    return types, rows


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def _batches(
    types: list[str], chunks: list[bytes], min_run: int | None
) -> list[CopyBatch]:
    decoder = BinaryCopyDecoder(types, min_run=min_run)
    batches = [b for chunk in chunks for b in decoder.feed(chunk)]
    decoder.finish()
    return batches


def _column_values(batches: list[CopyBatch], index: int) -> list[object]:
    """Column ``index``'s values as bytes per row (None for NULL)."""
    values: list[object] = []
    for batch in batches:
        column: CopyColumn = batch.columns[index]
        if column.lengths is None:
            for null, raw in zip(column.nulls, column.values, strict=True):
                values.append(None if null else bytes(raw))
            continue
        flat = bytes(text_bytes(column))
        at = 0
        for null, size in zip(column.nulls, column.lengths.tolist(), strict=True):
            values.append(None if null else flat[at : at + size])
            at += size
    return values


@settings(max_examples=300, deadline=None)
@given(
    tables(),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.sampled_from([1, 2, 5, 64, 100]),
    st.booleans(),
)
def test_runs_give_the_rows_of_the_general_way_and_of_the_packer(
    table: tuple[list[str], list[tuple[object, ...]]],
    cuts: list[int],
    min_run: int,
    utf8: bool,
) -> None:
    types, rows = table
    chunks = _chunks(_copy(types, rows), cuts)
    fields = [field_for_pg_type(f"c{i}", t) for i, t in enumerate(types)]
    if utf8:  # VOTable 1.5's UTF-8 char for texts
        fields = [
            FieldSpec(f.name, "char", "*") if f.datatype == "unicodeChar" else f
            for f in fields
        ]
    general = _batches(types, chunks, None)
    runs = _batches(types, chunks, min_run)
    assert sum(b.rows for b in runs) == sum(b.rows for b in general) == len(rows)
    assert all(b.run is None for b in general)
    for binary2 in (True, False):
        packer = BinaryPacker(fields, binary2=binary2)
        expected = bytes(packer.pack(rows)) if rows else b""
        for batches in (general, runs):
            packed = b"".join(bytes(pack_copy(packer, b)) for b in batches)
            assert packed == expected
    for i in range(len(types)):
        assert _column_values(runs, i) == _column_values(general, i)


@settings(max_examples=100, deadline=None)
@given(tables(), st.integers(0, 200))
def test_a_runs_head_and_text_lengths(
    table: tuple[list[str], list[tuple[object, ...]]], count: int
) -> None:
    types, rows = table
    fields = [field_for_pg_type(f"c{i}", t) for i, t in enumerate(types)]
    packer = BinaryPacker(fields, binary2=True)
    first = 0
    for batch in _batches(types, [_copy(types, rows)], 1):
        head = batch.head(count)
        assert head.rows == min(count, batch.rows)
        if head.rows:
            expected = packer.pack(rows[first : first + head.rows])
            assert bytes(pack_copy(packer, head)) == bytes(expected)
        first += batch.rows
        lengths = batch.text_lengths()
        columns = [c for c in batch.columns if c.lengths is not None]
        assert len(lengths) == len(columns)
        for n, column in zip(lengths, columns, strict=True):
            assert np.array_equal(np.maximum(n, 0), column.lengths)


def _shape(rows: list[tuple[object, ...]]) -> list[tuple[int, bool]]:
    batches = _batches(
        ["int8", "float8", "text"], [_copy(["int8", "float8", "text"], rows)], 1024
    )
    return [(b.rows, b.run is not None) for b in batches]


def test_runs_are_long_or_reach_the_end_or_lead_to_a_long_one() -> None:
    rows: list[tuple[object, ...]] = [(i, i / 3, f"n{i % 10}") for i in range(3000)]
    assert _shape(rows) == [(3000, True)]
    rows[2000] = (2000, None, "n0")  # a NULL: a short run between long ones
    assert _shape(rows) == [(2000, True), (1, False), (999, True)]
    rows[2999] = (2999, 0.5, "n10")  # short runs, then one to the end
    assert _shape(rows) == [(2000, True), (999, False), (1, True)]
    rows[100] = (100, None, "n0")  # short runs before a long one
    rows[101] = (101, 0.5, "n00")
    assert _shape(rows) == [(102, False), (1898, True), (999, False), (1, True)]
    for i in range(0, 3000, 7):  # short runs all along
        rows[i] = (i, None, "n0")
    assert _shape(rows) == [(3000, False)]


#: Texts made of what looks like a row's field count or a field's length word.
_FAKE_WORDS = st.lists(
    st.sampled_from(
        ["\x00\x00\x00\x08", "\x00\x02\x00\x00\x00\x08", "\x00\x03", "\x7f\x7f", "a"]
    ),
    max_size=4,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["int4", "int8", "text", "bool"]), min_size=1, max_size=4),
    st.data(),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.sampled_from([1, 2, 3]),
)
def test_values_that_look_like_lengths_do_not_make_runs(
    types: list[str], data: st.DataObject, cuts: list[int], min_run: int
) -> None:
    rows: list[tuple[object, ...]] = []
    for _ in range(data.draw(st.integers(0, 5))):
        makers = []
        for pg_type in types:
            kind = data.draw(st.integers(0, 3))
            if kind == 0:
                makers.append(st.none())
            elif pg_type == "text":
                fixed = st.just(data.draw(_FAKE_WORDS))
                makers.append(fixed if kind == 1 else _FAKE_WORDS)
            elif pg_type == "int4":
                makers.append(st.sampled_from([2, 4, 8, 0x20000, -1]))
            else:
                makers.append(_value(pg_type, st.text()))
        count = data.draw(st.sampled_from([1, 2, 3, 40]))
        rows += data.draw(st.lists(st.tuples(*makers), min_size=count, max_size=count))
    chunks = _chunks(_copy(types, rows), cuts)
    fields = [field_for_pg_type(f"c{i}", t) for i, t in enumerate(types)]
    general = _batches(types, chunks, None)
    runs = _batches(types, chunks, min_run)
    assert sum(b.rows for b in runs) == len(rows)
    for binary2 in (True, False):
        packer = BinaryPacker(fields, binary2=binary2)
        expected = bytes(packer.pack(rows)) if rows else b""
        for batches in (general, runs):
            assert b"".join(bytes(pack_copy(packer, b)) for b in batches) == expected

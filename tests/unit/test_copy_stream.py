"""The binary COPY stream's limits (taprunner/query/bincopy.py's _Stream) over
runs: whatever the chunks, the gathering and the batches per chunk, a result
has min(rows, MAXREC) rows with the overflow flag when the query's MAXREC + 1st
row came, stops before the first text over the value limit, and is cut by the
byte limit only when rows were left."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_copyruns import _chunks, _copy

from taprunner.formats.fields import field_for_pg_type
from taprunner.formats.pgbinary import BinaryCopyDecoder
from taprunner.formats.votable import VOTableEncoder
from taprunner.query import bincopy
from taprunner.query.bincopy import _Stream
from taprunner.query.bytelimits import ResultLimits

TYPES = ["int8", "text"]
VALUE_BYTES = 10


@st.composite
def results(draw: st.DrawFn) -> list[tuple[object, ...]]:
    """Runs of rows of one layout: texts of one length or NULL, now and then
    over the value limit."""
    rows: list[tuple[object, ...]] = []
    for _ in range(draw(st.integers(0, 5))):
        size = draw(st.integers(0, 6)) + draw(st.sampled_from([0, 0, 0, 20]))
        null = draw(st.integers(0, 3)) == 0
        for _ in range(draw(st.sampled_from([1, 2, 3, 7, 40]))):
            rows.append((len(rows), None if null else "x" * size))
    return rows


async def _streamed(
    chunks: list[bytes], maxrec: int, limits: ResultLimits, min_run: int | None
) -> _Stream:
    fields = [field_for_pg_type(f"c{i}", t) for i, t in enumerate(TYPES)]

    async def sink(data: bytes) -> None:
        pass

    stream = _Stream(VOTableEncoder(fields), TYPES, maxrec, sink, limits)
    stream.decoder = BinaryCopyDecoder(TYPES, min_run=min_run)
    for chunk in chunks:
        await stream.write(chunk)
    await stream.flush()
    stream.finish()
    return stream


@settings(max_examples=300, deadline=None)
@given(
    results(),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.integers(0, 120),
    st.integers(1, 400),
    st.sampled_from([1, 2, 5, None]),
    st.sampled_from([1, 50, 10**6]),
)
def test_maxrec_and_the_limits_across_batches(
    rows: list[tuple[object, ...]],
    cuts: list[int],
    maxrec: int,
    result_bytes: int,
    min_run: int | None,
    gather: int,
) -> None:
    rows = rows[: maxrec + 1]  # the query asks for MAXREC + 1 rows
    chunks = _chunks(_copy(TYPES, rows), cuts)
    limits = ResultLimits(VALUE_BYTES, result_bytes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bincopy, "GATHER", gather)
        stream = asyncio.run(_streamed(chunks, maxrec, limits, min_run))
    over = [i for i, row in enumerate(rows) if len(row[1] or "") > VALUE_BYTES]
    kept = min(len(rows), maxrec)
    if stream.cut is None:
        assert stream.rows == kept
        assert stream.overflow == (len(rows) > maxrec)
        assert not over or over[0] >= maxrec
    elif stream.cut.startswith("result cut before a value"):
        assert over and stream.rows <= over[0] < len(rows)
        assert not stream.overflow
    else:  # the byte limit, with rows left
        assert stream.written >= result_bytes and stream.rows < len(rows)
    assert stream.rows <= kept and (not over or stream.rows <= over[0])

"""Runs of one layout (taprunner/formats/copyruns.py) on real PostgreSQL: a
demo-shaped result (the benchmark's columns, names changing length at powers
of ten) and one with runs of NULLs, NaN, infinities, booleans and non-ASCII
text give the asyncpg path's rows, read whole or in chunks of any size; and
several batches from one chunk keep MAXREC and the result byte limit; a
database error within the gathered chunks keeps the rows before it."""

from __future__ import annotations

import io

import asyncpg
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from test_bincopy import LIMITS, _copied, _decoded, _raw
from test_columnar import _asyncpg, _described, _split

from taprunner.formats.pgbinary import BinaryCopyDecoder
from taprunner.formats.votable import VOTableEncoder
from taprunner.query.bincopy import _Stream, stream_binary_copy
from taprunner.query.bytelimits import ResultLimits

#: demo.stars' columns and names ('DEMO ' || id: a new length at each power of ten).
STARS = (
    "SELECT i::bigint AS id, i * 0.37::float8 AS ra, -i * 0.01::float8 AS dec,"
    " (6 + i % 14)::real AS mag, 'DEMO ' || i AS name"
    " FROM generate_series(1, {n}) AS i"
)
#: Runs of 3000 rows: in each, a column is NULL everywhere or nowhere and a text
#: is as long everywhere; NaN, infinities, booleans and non-ASCII text inside.
MIXED = (
    "SELECT i::int4 AS n, (i % 7)::int2 AS s,"
    " CASE WHEN i / 3000 % 3 = 1 THEN NULL ELSE i * 1.5::float8 END AS x,"
    " CASE WHEN i % 5 = 0 THEN 'NaN'::float4 WHEN i % 5 = 1 THEN '-Infinity'"
    " ELSE i::float4 END AS f,"
    " (i % 2 = 0) AS b,"
    " CASE WHEN i / 3000 % 4 = 2 THEN NULL ELSE"
    " repeat(CASE WHEN i / 3000 % 2 = 1 THEN 'é' ELSE 'a' END, i / 3000 % 5) END"
    " AS t FROM generate_series(1, {n}) AS i"
)


@pytest.mark.parametrize("serialization", ["binary2", "binary"])
@pytest.mark.parametrize("sql", [STARS, MIXED], ids=["stars", "mixed"])
async def test_same_rows_as_the_asyncpg_path(
    conn: asyncpg.Connection, sql: str, serialization: str
) -> None:
    query = sql.format(n=40_000)
    fields, types = await _described(conn, query)
    expected = _split(await _asyncpg(conn, fields, query, serialization))
    copied, outcome = await _copied(conn, query, serialization=serialization)
    assert outcome.rows == 40_000 and not outcome.overflow
    assert _split(copied) == expected
    raw = await _raw(conn, query)
    batches = BinaryCopyDecoder(types).feed(raw)
    assert sum(b.rows for b in batches if b.run is not None) > 35_000
    if serialization == "binary2":
        whole = _decoded(types, [raw])  # one chunk: runs of thousands of rows
        assert whole == (expected[1], 40_000)
        for size in (997, 65_536, 300_001):
            chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
            assert _decoded(types, chunks) == whole


async def _fed_whole(
    conn: asyncpg.Connection, sql: str, maxrec: int, limits: ResultLimits
) -> tuple[bytes, _Stream]:
    """The whole COPY fed to the stream as one chunk (several batches)."""
    fields, types = await _described(conn, sql)
    raw = await _raw(conn, sql)
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    encoder = VOTableEncoder(fields)
    stream = _Stream(encoder, types, maxrec, sink, limits)
    await stream.write(raw)
    await stream.flush()
    stream.finish()
    await stream.start()
    cut = stream.cut
    parts.append(encoder.footer(overflow=stream.overflow or cut is not None, cut=cut))
    return b"".join(parts), stream


async def test_several_batches_of_one_chunk_keep_the_limits(
    conn: asyncpg.Connection,
) -> None:
    sql = STARS.format(n=12_000)  # runs: 1-9, 10-99, 100-999, 1000-9999, 10000-
    types = (await _described(conn, sql))[1]
    batches = BinaryCopyDecoder(types).feed(await _raw(conn, sql))
    assert [(b.rows, b.run is not None) for b in batches] == [
        (999, False),  # short runs before a long one
        (9000, True),
        (2001, True),
    ]
    document, stream = await _fed_whole(conn, sql, 5000, LIMITS)
    assert (stream.rows, stream.overflow, stream.cut) == (5000, True, None)
    table = parse(io.BytesIO(document)).get_first_table().array
    assert list(table["id"][-2:]) == [4999, 5000]
    # The byte limit reached by the first batch: the rest is left, cut.
    document, stream = await _fed_whole(conn, sql, 10**6, ResultLimits(1000, 10_000))
    assert stream.cut is not None and "tap_result_bytes" in stream.cut
    assert stream.rows == len(parse(io.BytesIO(document)).get_first_table().array)
    # Reached by the last batch: nothing left, nothing cut.
    whole, stream = await _fed_whole(conn, sql, 10**6, LIMITS)
    assert stream.cut is None and stream.rows == 12_000
    size = len(_split(whole)[1]) * 4 // 3
    _, stream = await _fed_whole(conn, sql, 10**6, ResultLimits(1000, size))
    assert (stream.rows, stream.cut) == (12_000, None)


async def test_a_failure_soon_after_the_cut_leaves_it_cut(
    conn: asyncpg.Connection,
) -> None:
    # The same within the first few KB of the COPY: the chunks gathered before
    # the failure (bincopy.GATHER) still hold the rows up to the cut.
    sql = "SELECT i, 1 / (i - 3000) AS x FROM generate_series(1, 300000) AS i"
    document, outcome = await _copied(conn, sql, limits=ResultLimits(1000, 2_000))
    assert outcome.cut is not None and outcome.cut.startswith("result cut at ")
    assert b'value="OVERFLOW"' in document and b'value="ERROR"' not in document


async def test_an_early_error_ends_the_document_after_its_rows(
    conn: asyncpg.Connection,
) -> None:
    # An error in the first few KB: the rows before it still go out, then the
    # error, as for an error later on.
    sql = "SELECT i, 1 / (3000 - i) AS boom FROM generate_series(1, 200000) AS i"
    parts: list[bytes] = []
    fields, types = await _described(conn, sql)
    encoder = VOTableEncoder(fields)

    async def sink(data: bytes) -> None:
        parts.append(data)

    with pytest.raises(asyncpg.DivisionByZeroError):
        async with conn.transaction(readonly=True):
            await stream_binary_copy(
                conn, sql, encoder, types, 10**7, 10.0, sink, LIMITS
            )
    document = b"".join(parts)
    assert b'value="ERROR">query failed: division by zero' in document
    assert len(parse(io.BytesIO(document)).get_first_table().array) > 0

"""The binary COPY path (taprunner/query/bincopy.py) against the asyncpg path, on
a real PostgreSQL: the same row bytes (base64 line breaks aside) for every type
it takes, NULLs, many batches, MAXREC overflow, the byte limits, an error after
rows went out; Parquet with the same values; the decoder on every chunk split
and on rows full of false row starts.
"""

from __future__ import annotations

import asyncio
import io
import math

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]
from test_columnar import ODD, TABLE, _asyncpg, _described, _split
from testkit import DbSetup

from taprunner.errors import TapQueryError
from taprunner.formats.fields import FieldSpec
from taprunner.formats.parquet import ParquetEncoder
from taprunner.formats.pgbinary import (
    BinaryCopyDecoder,
    BrokenCopy,
    CopyBatch,
    CopyColumn,
)
from taprunner.formats.votable import VOTableEncoder
from taprunner.query.bincopy import stream_binary_copy
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.execute import _read_only, run_query
from taprunner.query.outcome import QueryOutcome
from taprunner.request import parse_request
from taprunner.schema import tapschema
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.tapschema import QUERY_ROLE

MANY = (
    "SELECT i::bigint AS id, i * 0.5::float8 AS x, (i % 3 = 0) AS even3,"
    " CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i || repeat('é', i % 4) END"
    " AS label, (i % 5)::smallint AS s, CASE WHEN i % 11 = 0 THEN NULL"
    " ELSE i::real END AS r FROM generate_series(1, {n}) AS i"
)
LIMITS = ResultLimits(4 * 1024 * 1024, 16 * 1024**3)


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True,
        sql=TABLE + f"GRANT SELECT ON odd TO {QUERY_ROLE};",
    )


async def _copied(
    conn: asyncpg.Connection,
    sql: str,
    encoder: VOTableEncoder | ParquetEncoder | None = None,
    *,
    serialization: str = "binary2",
    maxrec: int = 10_000_000,
    limits: ResultLimits = LIMITS,
) -> tuple[bytes, QueryOutcome]:
    fields, types = await _described(conn, sql)
    if encoder is None:
        encoder = VOTableEncoder(fields, serialization=serialization)  # type: ignore[arg-type]
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    try:
        async with conn.transaction(readonly=True):
            outcome = await stream_binary_copy(
                conn, sql, encoder, types, maxrec, 10.0, sink, limits
            )
    except TapQueryError as exc:
        exc.add_note(b"".join(parts)[-300:].decode(errors="replace"))
        raise
    return b"".join(parts), outcome


@pytest.mark.parametrize("serialization", ["binary2", "binary"])
async def test_same_bytes_as_the_asyncpg_path(
    conn: asyncpg.Connection, serialization: str
) -> None:
    fields, _ = await _described(conn, ODD)
    copied, outcome = await _copied(conn, ODD, serialization=serialization)
    assert outcome == QueryOutcome(5, False)
    assert _split(copied) == _split(await _asyncpg(conn, fields, ODD, serialization))
    table = parse(io.BytesIO(copied)).get_first_table().array
    assert table["id"].mask[0] and table["name"][4] == "héllo 😀 ☃"
    assert table["fixed"][4] == "x  "


@pytest.mark.parametrize("serialization", ["binary2", "binary"])
async def test_many_batches_agree_and_maxrec_overflows(
    conn: asyncpg.Connection, serialization: str
) -> None:
    sql = MANY.format(n=60_000)
    fields, _ = await _described(conn, sql)
    expected = _split(await _asyncpg(conn, fields, sql, serialization))
    copied, outcome = await _copied(conn, sql, serialization=serialization)
    assert outcome == QueryOutcome(60_000, False)
    assert _split(copied) == expected
    capped, outcome = await _copied(
        conn, f"{sql} LIMIT 45002", serialization=serialization, maxrec=45_001
    )
    assert outcome == QueryOutcome(45_001, True)
    first = await _asyncpg(conn, fields, f"{sql} LIMIT 45001", serialization)
    assert _split(capped)[1] == _split(first)[1]
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in _split(capped)[2]
    exact, outcome = await _copied(
        conn, sql, serialization=serialization, maxrec=60_000
    )
    assert outcome == QueryOutcome(60_000, False)
    assert b"OVERFLOW" not in exact


async def test_empty_result(conn: asyncpg.Connection) -> None:
    document, outcome = await _copied(conn, "SELECT id, name FROM odd WHERE false")
    assert outcome == QueryOutcome(0, False)
    assert _split(document)[1] == b""
    assert len(parse(io.BytesIO(document)).get_first_table().array) == 0


async def test_a_value_over_the_limit_cuts_before_its_row(
    conn: asyncpg.Connection,
) -> None:
    sql = (
        "SELECT i AS n, repeat('x', CASE WHEN i = 30000 THEN 70 ELSE 5 END) AS t"
        " FROM generate_series(1, 40000) AS i"
    )
    limits = ResultLimits(64, 10**9)
    document, outcome = await _copied(conn, sql, limits=limits)
    assert outcome.rows == 29_999 and outcome.cut is not None
    assert "tap_value_bytes" in outcome.cut
    table = parse(io.BytesIO(document)).get_first_table().array
    assert len(table) == 29_999 and table["n"][-1] == 29_999
    assert b'value="OVERFLOW">result cut before a value larger than 64' in document


async def test_the_result_limit_cuts_after_the_batch_that_reaches_it(
    conn: asyncpg.Connection,
) -> None:
    sql = MANY.format(n=200_000)
    document, outcome = await _copied(conn, sql, limits=ResultLimits(1000, 100_000))
    assert outcome.cut is not None and "tap_result_bytes" in outcome.cut
    assert 0 < outcome.rows < 200_000
    table = parse(io.BytesIO(document)).get_first_table().array
    assert len(table) == outcome.rows and list(table["id"][:2]) == [1, 2]
    # The limit reached by the last rows: nothing was left, nothing is cut.
    whole, _ = await _copied(conn, sql)
    size = len(_split(whole)[1]) * 4 // 3  # base64 of all rows, about
    document, outcome = await _copied(conn, sql, limits=ResultLimits(1000, size))
    assert outcome == QueryOutcome(200_000, False)


async def test_an_error_after_rows_went_out_ends_the_document(
    conn: asyncpg.Connection,
) -> None:
    sql = "SELECT i, 1 / (150000 - i) AS boom FROM generate_series(1, 200000) AS i"
    parts: list[bytes] = []
    fields, types = await _described(conn, sql)
    encoder = VOTableEncoder(fields)

    async def sink(data: bytes) -> None:
        parts.append(data)

    with pytest.raises(asyncpg.DivisionByZeroError):  # run_query: a TapQueryError
        async with conn.transaction(readonly=True):
            await stream_binary_copy(
                conn, sql, encoder, types, 10**7, 10.0, sink, LIMITS
            )
    document = b"".join(parts)
    assert document.rstrip().endswith(b"</VOTABLE>")
    assert b'value="ERROR">query failed: division by zero' in document
    assert len(parse(io.BytesIO(document)).get_first_table().array) > 0


async def test_parquet_same_values_as_the_asyncpg_rows(
    conn: asyncpg.Connection,
) -> None:
    writer = ParquetEncoder
    for sql in (ODD, MANY.format(n=150_000)):
        fields, _ = await _described(conn, sql)
        copied, outcome = await _copied(conn, sql, writer(fields))
        encoder = ParquetEncoder(fields)
        rows = await conn.fetch(sql)
        assert outcome == QueryOutcome(len(rows), False)
        expected = encoder.header() + encoder.encode(rows) + encoder.footer()
        got, want = (pq.read_table(pa.BufferReader(d)) for d in (copied, expected))
        assert got.schema.equals(want.schema, check_metadata=True)
        assert _nan_safe(copied) == _nan_safe(expected)
    # astropy reads it (no NULL booleans here: its Parquet reader has no masks).
    table = Table.read(io.BytesIO(copied), format="parquet.votable")
    assert len(table) == 150_000 and table["label"][0] == "row 1é"
    assert table["s"].dtype == np.int16 and table["x"][3] == 2.0


def _nan_safe(parquet: bytes) -> list[list[object]]:
    """The columns' values, NaN as a string (NaN != NaN)."""
    table = pq.read_table(pa.BufferReader(parquet))
    return [
        ["NaN" if isinstance(v, float) and math.isnan(v) else v for v in column]
        for column in table.to_pydict().values()
    ]


async def test_run_query_takes_it_within_maxrec(conn: asyncpg.Connection) -> None:
    await tapschema.publish(conn, "public.odd")
    catalog = await TapCatalog.load(conn)
    request = parse_request(
        {"query": ["SELECT id, name FROM odd ORDER BY id"], "lang": ["ADQL"]},
        maxrec_default=3,
        maxrec_hard=10,
    )
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    outcome = await run_query(
        conn, request, catalog, sink, timeout=10, binary_copy=True
    )
    assert outcome == QueryOutcome(3, True)
    document = b"".join(parts)
    assert len(parse(io.BytesIO(document)).get_first_table().array) == 3
    assert b'value="OVERFLOW"' in document


async def test_runs_in_the_read_only_transaction_of_the_query_role(
    conn: asyncpg.Connection,
) -> None:
    sql = (
        "SELECT current_user::text AS who,"
        " current_setting('transaction_read_only') AS ro,"
        " current_setting('statement_timeout') AS limit_"
    )
    fields, types = await _described(conn, sql)
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    async with _read_only(conn, QUERY_ROLE, 12.5):
        await stream_binary_copy(
            conn, sql, VOTableEncoder(fields), types, 10, 12.5, sink, LIMITS
        )
    row = parse(io.BytesIO(b"".join(parts))).get_first_table().array[0]
    assert (row["who"], row["ro"], row["limit_"]) == (QUERY_ROLE, "on", "12500ms")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with _read_only(conn, QUERY_ROLE, 12.5):
            await stream_binary_copy(
                conn,
                "SELECT x FROM secret",
                VOTableEncoder(fields),
                types,
                10,
                12.5,
                sink,
                LIMITS,
            )


# ------------------------------------------------------------------ the decoder
def _fields(types: list[str]) -> list[FieldSpec]:
    from taprunner.formats.fields import field_for_pg_type

    return [field_for_pg_type(f"c{i}", t) for i, t in enumerate(types)]


async def _raw(conn: asyncpg.Connection, sql: str) -> bytes:
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    await conn.copy_from_query(sql, output=sink, format="binary")
    return b"".join(parts)


def _decoded(types: list[str], chunks: list[bytes]) -> tuple[bytes, int]:
    decoder = BinaryCopyDecoder(types)
    encoder = VOTableEncoder(_fields(types))
    packer = encoder.packer
    assert packer is not None
    from taprunner.formats.copypack import pack_copy

    out, rows = [], 0
    for chunk in chunks:
        for batch in decoder.feed(chunk):
            out.append(bytes(pack_copy(packer, batch)))
            rows += batch.rows
    decoder.finish()
    return b"".join(out), rows


async def test_every_chunk_split_gives_the_same_rows(conn: asyncpg.Connection) -> None:
    sql = "SELECT * FROM odd"
    types = (await _described(conn, sql))[1]
    raw = await _raw(conn, sql)
    whole, rows = _decoded(types, [raw])
    assert rows == 5
    for cut in range(1, len(raw)):
        assert _decoded(types, [raw[:cut], raw[cut:]]) == (whole, 5)
    assert _decoded(types, [raw[i : i + 7] for i in range(0, len(raw), 7)]) == (
        whole,
        5,
    )


async def test_rows_full_of_false_row_starts(conn: asyncpg.Connection) -> None:
    # Five int4 columns of small numbers: the bytes 00 05 00 00 00 04 (a row's
    # field count and first length) occur inside values all the time.
    sql = (
        "SELECT 5 AS a, 4 AS b, i % 6 AS c, 5 AS d, 4 AS e, 'x' || (i % 3) AS t"
        " FROM generate_series(1, 30000) AS i"
    )
    fields, types = await _described(conn, sql)
    copied, outcome = await _copied(conn, sql)
    assert outcome == QueryOutcome(30_000, False)
    assert _split(copied) == _split(await _asyncpg(conn, fields, sql, "binary2"))
    raw = await _raw(conn, "SELECT 5, 4, 5, 4, 5")
    assert _decoded(["int4"] * 5, [raw])[1] == 1


async def test_other_columns_than_described_are_refused(
    conn: asyncpg.Connection,
) -> None:
    raw = await _raw(conn, "SELECT 1::int4 AS a, 2::int4 AS b")
    with pytest.raises(BrokenCopy):
        _decoded(["int8", "int4"], [raw])
    with pytest.raises(BrokenCopy):
        _decoded(["int4", "int4", "int4"], [raw])
    with pytest.raises(BrokenCopy):
        _decoded(["int4", "int4"], [raw[:-2]])  # no trailer: cut short


def test_head_keeps_the_first_rows() -> None:
    text = CopyColumn(
        np.array([False, True, False]),
        np.frombuffer(b"abxyz", np.uint8),
        np.array([2, 0, 3], np.int64),
    )
    number = CopyColumn(
        np.zeros(3, np.bool_), np.arange(6, dtype=np.uint8).reshape(3, 2)
    )
    head = CopyBatch(3, [text, number]).head(2)
    assert head.rows == 2 and bytes(head.columns[0].values) == b"ab"
    assert list(head.columns[0].lengths) == [2, 0]  # type: ignore[arg-type]
    assert head.columns[1].values.tolist() == [[0, 1], [2, 3]]


async def test_a_cancelled_task_cancels_the_copy_in_postgresql(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    sql = (
        "SELECT i, pg_sleep(CASE WHEN i = 20000 THEN 30 ELSE 0 END)::text AS s"
        " FROM generate_series(1, 30000) AS i"
    )
    fields, types = await _described(conn, sql)
    parts: list[bytes] = []
    flowing = asyncio.Event()

    async def sink(data: bytes) -> None:
        parts.append(data)
        flowing.set()

    async def run() -> None:
        async with conn.transaction(readonly=True):
            await stream_binary_copy(
                conn, sql, VOTableEncoder(fields), types, 10**6, 60.0, sink, LIMITS
            )

    task = asyncio.ensure_future(run())
    await asyncio.wait_for(flowing.wait(), 30)  # rows went out: the COPY runs
    started = asyncio.get_running_loop().time()
    task.cancel()
    # asyncpg ends a cancelled binary COPY OUT by closing the connection (the
    # transaction's ROLLBACK then finds it mid-COPY); a CSV or text COPY is
    # cancelled in place. Either way the runner starts its next job afresh
    # (taprunner.query.job reconnects a closed connection).
    with pytest.raises((asyncio.CancelledError, asyncpg.InternalClientError)):
        await task
    assert conn.is_closed() or await conn.fetchval("SELECT 1") == 1
    # PostgreSQL stops the query at once, not after the sleep: nothing orphaned.
    other = await asyncpg.connect(db_dsn)
    try:
        while await other.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%'"
            " AND pid <> pg_backend_pid()"
        ):
            assert asyncio.get_running_loop().time() - started < 10
            await asyncio.sleep(0.1)
    finally:
        await other.close()


async def test_a_cancelled_copy_in_the_read_only_transaction_stays_cancelled(
    conn: asyncpg.Connection, db_dsn: str
) -> None:
    # An aborted job's task is cancelled mid-COPY: whatever asyncpg does to the
    # connection, the cancellation must come out (not a driver error, which the
    # runner takes for a database outage and writes as the job's error).
    sql = (
        "SELECT i, pg_sleep(CASE WHEN i = 20000 THEN 30 ELSE 0 END)::text AS s"
        " FROM generate_series(1, 30000) AS i"
    )
    fields, types = await _described(conn, sql)
    for _ in range(3):
        own = await asyncpg.connect(db_dsn)
        flowing = asyncio.Event()

        async def sink(data: bytes, flowing: asyncio.Event = flowing) -> None:
            flowing.set()

        async def run(own: asyncpg.Connection = own) -> None:
            async with _read_only(own, None, 60.0):
                await stream_binary_copy(
                    own, sql, VOTableEncoder(fields), types, 10**6, 60.0, sink, LIMITS
                )

        task = asyncio.ensure_future(run())
        await asyncio.wait_for(flowing.wait(), 30)
        task.cancel()
        try:
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            own.terminate()


async def test_a_failure_after_the_result_was_cut_leaves_it_cut(
    conn: asyncpg.Connection,
) -> None:
    # Rows past the byte limit are read and dropped: a failure among them must
    # not turn the cut result into a failed query (the cursor path never
    # reads them).
    sql = "SELECT i, 1 / (i - 250000) AS x FROM generate_series(1, 300000) AS i"
    document, outcome = await _copied(conn, sql, limits=ResultLimits(1000, 20_000))
    assert outcome.cut is not None and outcome.cut.startswith("result cut at ")
    assert b'value="OVERFLOW"' in document and b'value="ERROR"' not in document

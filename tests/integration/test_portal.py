"""The cursor path opens its portal together with its first batch
(:mod:`taprunner.query.portal`): a sync query takes four round trips (BEGIN
with its settings, Parse, Bind+Execute, COMMIT), counted by asyncpg's own
protocol; longer results still stream batch after batch, and errors in the
first or a later batch come out as before."""

from __future__ import annotations

import io
from typing import Any

import asyncpg
import pytest
from astropy.io.votable import parse_single_table
from testkit import DbSetup

from taprunner.errors import TapQueryError
from taprunner.query.bytelimits import FIRST_ROWS, ResultLimits
from taprunner.query.execute import run_query
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.tapschema import QUERY_ROLE

ROWS = 250

SETUP = DbSetup(
    tap_schema=True,
    sql=f"""
        CREATE SCHEMA tst;
        CREATE TABLE tst.many (id integer, name text, x double precision);
        INSERT INTO tst.many
        SELECT i, 'n' || i, i / 10.0 FROM generate_series(1, {ROWS}) AS i;
    """,
    published={"tst.many": None},
)


@pytest.fixture
def db_setup() -> DbSetup:
    return SETUP


def _ids(body: bytes) -> list[int]:
    return [int(v) for v in parse_single_table(io.BytesIO(body)).array["id"]]


async def _sync(
    conn: asyncpg.Connection, adql: str, maxrec: int = 1000, fmt: str = "votable"
) -> tuple[bytes, int, Any]:
    """``adql`` as the sync endpoint runs it (pooled connection: no session,
    no statement cache): its bytes, the round trips asyncpg made for it (its
    writes to the socket: asyncpg writes each request's messages at once, up
    to their Sync, and waits for the answer), and its outcome or the
    TapQueryError raised."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=maxrec, format=FORMATS[fmt])
    catalog = await TapCatalog.load(conn)
    transport: Any = conn._transport  # asyncio's (a Python object): counted
    writes = 0
    write = transport.write

    def counted(data: bytes) -> None:
        nonlocal writes
        writes += 1
        write(data)

    transport.write = counted
    try:
        outcome: Any = await run_query(
            conn,
            request,
            catalog,
            sink,
            timeout=30,
            role=QUERY_ROLE,
            result_limits=ResultLimits(1 << 20, 1 << 30),
        )
    except TapQueryError as exc:
        outcome = exc
    finally:
        del transport.write
    return b"".join(chunks), writes, outcome


async def test_a_small_sync_query_takes_four_round_trips(
    conn: asyncpg.Connection,
) -> None:
    body, trips, outcome = await _sync(
        conn, "SELECT id, name FROM tst.many WHERE id BETWEEN 10 AND 12"
    )
    assert outcome.rows == 3 and not outcome.overflow
    assert _ids(body) == [10, 11, 12]
    # BEGIN with its SET LOCALs; Parse+Describe; Bind+Execute of the first
    # batch; COMMIT. (Five before: Bind and Execute went separately.)
    assert trips == 4
    assert not conn.is_in_transaction()


async def test_a_longer_result_streams_every_batch(conn: asyncpg.Connection) -> None:
    assert ROWS > FIRST_ROWS  # more than the first batch holds
    body, trips, outcome = await _sync(conn, "SELECT id FROM tst.many ORDER BY id")
    assert outcome.rows == ROWS and not outcome.overflow
    assert _ids(body) == list(range(1, ROWS + 1))
    assert trips == 5  # one more Execute for the rest
    body, _, outcome = await _sync(conn, "SELECT id FROM tst.many ORDER BY id", 120)
    assert outcome.rows == 120 and outcome.overflow
    assert _ids(body) == list(range(1, 121))
    assert b'value="OVERFLOW"' in body


async def test_errors_in_the_first_and_a_later_batch(conn: asyncpg.Connection) -> None:
    # In the first batch: nothing went out, the error is raised (a 4xx/5xx
    # document of the endpoint's choosing).
    body, _, error = await _sync(
        conn, "SELECT id / (id - 2) AS q FROM tst.many ORDER BY id"
    )
    assert isinstance(error, TapQueryError) and "division by zero" in str(error)
    assert body == b""
    assert not conn.is_in_transaction()
    # In a later batch (no ORDER BY: rows are computed as they are fetched):
    # the document ends with the error status.
    body, _, error = await _sync(
        conn, f"SELECT id / (id - {ROWS - 5}) AS q FROM tst.many"
    )
    assert isinstance(error, TapQueryError)
    assert b'value="ERROR"' in body and b"division by zero" in body
    assert not conn.is_in_transaction()
    # The connection serves the next query.
    _, _, outcome = await _sync(conn, "SELECT id FROM tst.many WHERE id = 1")
    assert outcome.rows == 1


async def test_tabledata_from_copy_sets_its_floats_in_the_begin(
    conn: asyncpg.Connection,
) -> None:
    # A session whose floats print long: the transaction's setup sets the
    # shortest that round-trips, with BEGIN, not in a round trip of its own.
    await conn.execute("SET extra_float_digits = 3")
    body, trips, outcome = await _sync(
        conn, "SELECT id, x FROM tst.many WHERE id BETWEEN 1 AND 3", fmt="votable/td"
    )
    assert outcome.rows == 3
    assert b"<TD>0.1</TD>" in body and b"<TD>0.3</TD>" in body
    assert b"0.10000000000000001" not in body
    assert trips == 4  # BEGIN with its settings, Parse, COPY, COMMIT
    assert await conn.fetchval("SHOW extra_float_digits") == "3"

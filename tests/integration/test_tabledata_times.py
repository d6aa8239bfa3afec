"""Timestamps and dates in TABLEDATA from COPY text: byte-identical to the
encoder's (Python's ``isoformat`` of asyncpg's values, UTC without an offset,
infinities as asyncpg's ``max``/``min``), on real PostgreSQL, for chosen edge
values and for any values hypothesis draws; a year the encoder cannot write
fails the query on both paths."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_result_limits import _status
from test_tabledata_copy import ENCODER, TD, _both, _document
from testkit import DbSetup

from taprunner.query.bytelimits import ResultLimits

TIMES = [
    "'2021-03-04 05:06:07.5'",
    "'2021-03-04 05:06:07'",
    "'2021-03-04 05:06:07.000001'",
    "'2021-03-04 05:06:07.123456'",
    "'0001-01-01 00:00:00'",
    "'0999-12-31 23:59:59.99'",
    "'9999-12-31 23:59:59.999999'",
    "'2021-03-28 02:30:00'",  # a gap in Europe/Berlin
    "'2021-10-31 02:30:00'",  # twice in Europe/Berlin
    "'infinity'",
    "'-infinity'",
    "NULL",
]
SETUP = DbSetup(
    tap_schema=True,
    sql=f"""
        CREATE SCHEMA tst;
        CREATE TABLE tst.times (
            id integer, ts timestamp, tz timestamptz, d date, s text, b boolean,
            f double precision DEFAULT 2
        );
        INSERT INTO tst.times (id, ts, tz, d, s, b) VALUES
            {
        ", ".join(
            f"({n}, {t}, {t}, CAST({t} AS date), 'text ' || {n}, {n} % 2 = 0)"
            for n, t in enumerate(TIMES, 1)
        )
    };
        CREATE TABLE tst.odd_years (id integer, ts timestamp, d date);
        INSERT INTO tst.odd_years VALUES (1, '2000-01-01', '2000-01-01'),
            (2, '0044-03-15 BC', '0044-03-15 BC'), (3, '12000-01-01', '12000-01-01');
        CREATE TABLE tst.drawn (id integer, ts timestamp, tz timestamptz, d date);
    """,
    published={"tst.times": None, "tst.odd_years": None, "tst.drawn": None},
)
ALL = "SELECT id, ts, tz, d, s, b FROM tst.times ORDER BY id"


@pytest.fixture
def db_setup() -> DbSetup:
    return SETUP


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
async def test_times_are_byte_identical(conn: asyncpg.Connection, zone: str) -> None:
    await conn.execute(f"SET TimeZone = '{zone}'")
    fast, slow = await _both(conn, ALL)
    assert fast == slow
    assert b"<TD>2021-03-04T05:06:07.500000</TD>" in fast
    assert b"<TD>9999-12-31T23:59:59.999999</TD>" in fast  # infinity
    assert b"<TD>0001-01-01T00:00:00</TD>" in fast  # -infinity
    for adql in (
        "SELECT ts FROM tst.times ORDER BY id",
        "SELECT d, id FROM tst.times ORDER BY id",
        "SELECT tz AS a, ts AS b FROM tst.times ORDER BY id",
    ):
        fast, slow = await _both(conn, adql)
        assert fast == slow, adql


async def test_they_take_the_copy_text_path(conn: asyncpg.Connection) -> None:
    # A float beside them tells the path: PostgreSQL's shortest text "2"
    # where the encoder writes "2.0".
    adql = "SELECT ts, tz, d, f FROM tst.times ORDER BY id"
    fast, slow = await _both(conn, adql)
    assert b"<TD>2</TD>" in fast and b"<TD>2.0</TD>" in slow
    assert fast.replace(b"<TD>2</TD>", b"<TD>2.0</TD>") == slow
    # Times are spelt by column name: the translation makes names unique.
    fast, slow = await _both(conn, "SELECT ts, d AS ts, f FROM tst.times")
    assert fast.replace(b"<TD>2</TD>", b"<TD>2.0</TD>") == slow


async def test_limits_count_times_as_the_cursor_does(
    conn: asyncpg.Connection,
) -> None:
    # The cursor path counts no bytes for a time value: a value limit below
    # a timestamp's length cuts nothing (the texts of ALL are shorter).
    fast, slow = await _both(conn, ALL, limits=ResultLimits(7, 10**6))
    assert fast == slow and _status(fast) == ("OK", "")
    fast, slow = await _both(conn, ALL, limits=ResultLimits(6, 10**6))
    assert fast == slow and _status(fast)[0] == "OVERFLOW"  # "text 1" and more
    fast, slow = await _both(conn, ALL, maxrec=3)
    assert fast == slow and _status(fast) == ("OVERFLOW", "")


@pytest.mark.parametrize("column", ["ts", "d"])
async def test_a_year_the_encoder_cannot_write_fails_both(
    conn: asyncpg.Connection, column: str
) -> None:
    for row in (2, 3):
        adql = f"SELECT id, {column} FROM tst.odd_years WHERE id = {row}"
        with pytest.raises(Exception, match="out of range|ordinal"):
            await _document(conn, adql, ENCODER)
        with pytest.raises(Exception, match="year out of range for TABLEDATA"):
            await _document(conn, adql, TD)


DRAWN = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.one_of(st.none(), DRAWN), min_size=1, max_size=20))
def test_any_drawn_times_are_byte_identical(
    db_dsn: str, conn: asyncpg.Connection, values: list[dt.datetime | None]
) -> None:
    async def check() -> None:
        db = await asyncpg.connect(db_dsn)
        try:
            await db.execute("TRUNCATE tst.drawn")
            await db.executemany(
                "INSERT INTO tst.drawn VALUES ($1, $2, $3, $4)",
                [
                    (
                        n,
                        v,
                        None if v is None else v.replace(tzinfo=dt.UTC),
                        None if v is None else v.date(),
                    )
                    for n, v in enumerate(values)
                ],
            )
            await db.execute("SET TimeZone = 'Asia/Kolkata'")
            fast, slow = await _both(db, "SELECT * FROM tst.drawn ORDER BY id")
            assert fast == slow
        finally:
            await db.close()

    asyncio.run(check())

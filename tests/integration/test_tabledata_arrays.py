"""Arrays and DALI geometries in TABLEDATA from COPY text against the encoder,
on real PostgreSQL: integer and boolean arrays byte-identical, float arrays
(points, circles and polygons among them) parse-identical (PostgreSQL's
shortest float text), NULL elements, empty and NULL arrays, infinities, lower
bounds; the value limit counts elements as the cursor path does; a
multidimensional array (which the encoder writes as Python lists, unparsable)
fails the query."""

from __future__ import annotations

import asyncio
import math

import asyncpg
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_result_limits import _status
from test_tabledata_copy import ENCODER, TD, _both, _document, _table
from testkit import DbSetup

from taprunner.query.bytelimits import ResultLimits

ROWS = [
    "ARRAY[1, 2, 3]",
    "ARRAY[1, NULL, 3]",
    "ARRAY[NULL]",
    "'{}'",
    "NULL",
    "'[0:2]={7,8,9}'",
    "ARRAY[-32768, 32767]",
]
FLOATS = [
    "ARRAY[1.5, NULL, 'Infinity', '-Infinity', 'NaN', 2.0, -0.0, 1e-30]",
    "ARRAY[0.1, 1e16, 123456789.123456789]",
    "'{}'",
    "NULL",
]
BOOLS = ["ARRAY[true, NULL, false]", "'{}'", "NULL", "ARRAY[NULL::boolean]"]
SETUP = DbSetup(
    tap_schema=True,
    sql=f"""
        CREATE SCHEMA tst;
        CREATE TABLE tst.ints (id integer, i2 smallint[], i4 integer[], i8 bigint[],
            s text);
        INSERT INTO tst.ints VALUES {
        ", ".join(
            f"({n}, CAST({r} AS smallint[]), CAST({r} AS integer[]),"
            f" CAST({r} AS bigint[]), 'a, {{b}} ' || {n})"
            for n, r in enumerate(ROWS, 1)
        )
    };
        CREATE TABLE tst.floats (id integer, f4 real[], f8 double precision[]);
        INSERT INTO tst.floats VALUES {
        ", ".join(
            f"({n}, CAST({r} AS real[]), CAST({r} AS float8[]))"
            for n, r in enumerate(FLOATS, 1)
        )
    };
        CREATE TABLE tst.bools (id integer, b boolean[]);
        INSERT INTO tst.bools VALUES {
        ", ".join(f"({n}, CAST({r} AS boolean[]))" for n, r in enumerate(BOOLS, 1))
    };
        CREATE TABLE tst.pos (id integer, ra double precision, dec double precision);
        INSERT INTO tst.pos SELECT i, i * 3.7 % 360, i * 1.3 % 180 - 90
            FROM generate_series(1, 200) i;
        INSERT INTO tst.pos VALUES (201, NULL, 1), (202, 0.1, -0.0);
        CREATE TABLE tst.grown (id integer, a double precision[], s text);
        INSERT INTO tst.grown SELECT i, array_fill(0.5::float8, ARRAY[i * 3]), 'x'
            FROM generate_series(1, 12) i;
        CREATE TABLE tst.cube (id integer, a integer[]);
        INSERT INTO tst.cube VALUES (1, ARRAY[1]), (2, ARRAY[[1, 2], [3, 4]]);
        CREATE TABLE tst.drawn (id integer, a double precision[], r real[]);
    """,
    published={
        t: None
        for t in (
            "tst.ints",
            "tst.floats",
            "tst.bools",
            "tst.pos",
            "tst.grown",
            "tst.cube",
            "tst.drawn",
        )
    },
)


@pytest.fixture
def db_setup() -> DbSetup:
    return SETUP


def _assert_parse_identical(fast: bytes, slow: bytes) -> None:
    """The same values in every cell (arrays element by element, NaN equal to
    NaN, masks alike), and the same status."""
    a, b = _table(fast), _table(slow)
    assert a.dtype.names == b.dtype.names and len(a) == len(b)
    for name in a.dtype.names:
        for x, y in zip(a[name], b[name], strict=True):
            assert _cell(x) == _cell(y), (name, x, y)
    assert _status(fast) == _status(slow)


def _cell(value: object) -> object:
    """A comparable form of a parsed cell: NaN as a marker, masks as None."""
    if hasattr(value, "tolist"):
        mask = np.ma.getmaskarray(value).tolist()
        data = np.ma.getdata(value).tolist()
        if isinstance(data, list):
            return [None if m else _cell(d) for d, m in zip(data, mask, strict=True)]
        return None if mask else _cell(data)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return value


async def test_integer_and_boolean_arrays_are_byte_identical(
    conn: asyncpg.Connection,
) -> None:
    fast, slow = await _both(conn, "SELECT * FROM tst.ints ORDER BY id")
    assert fast == slow
    assert b"<TD>1  3</TD>" in fast and b"<TD>7 8 9</TD>" in fast
    assert b"<TD></TD><TD></TD><TD></TD><TD>a, {b} 4</TD>" in fast  # empty
    fast, slow = await _both(conn, "SELECT * FROM tst.bools ORDER BY id")
    assert fast == slow and b"<TD>T  F</TD>" in fast


async def test_float_arrays_parse_identically(conn: asyncpg.Connection) -> None:
    fast, slow = await _both(conn, "SELECT * FROM tst.floats ORDER BY id")
    _assert_parse_identical(fast, slow)
    assert b"1.5 NaN +Inf -Inf NaN 2 0 1e-30" in fast  # the COPY path's
    assert b"1.5 NaN +Inf -Inf NaN 2.0 0.0 1e-30" in slow


@pytest.mark.parametrize(
    "geometry",
    [
        "POINT('ICRS', ra, dec)",
        "CIRCLE('ICRS', ra, dec, 0.5)",
        "POLYGON('ICRS', ra, dec, ra + 1, dec, ra, dec + 0.5)",
    ],
)
async def test_geometries_parse_identically(
    conn: asyncpg.Connection, geometry: str
) -> None:
    adql = f"SELECT id, {geometry} AS g FROM tst.pos ORDER BY id"
    fast, slow = await _both(conn, adql)
    _assert_parse_identical(fast, slow)
    assert fast != slow  # taken by the COPY path: "2" where the encoder has "2.0"
    assert fast.count(b"<TD/>") == slow.count(b"<TD/>") == 1  # the NULL ra


async def test_the_value_limit_counts_elements(conn: asyncpg.Connection) -> None:
    # Row i holds 3 i doubles: 24 i bytes as the value limit counts them.
    adql = "SELECT id, a, s FROM tst.grown ORDER BY id"
    for value_bytes in (10, 24, 100, 200, 1000):
        limits = ResultLimits(value_bytes, 10**6)
        fast, slow = await _both(conn, adql, limits=limits)
        assert _status(fast) == _status(slow), value_bytes
        assert len(_table(fast)) == len(_table(slow)) == min(12, value_bytes // 24)
        _assert_parse_identical(fast, slow)


async def test_a_multidimensional_array_fails_the_copy_path(
    conn: asyncpg.Connection,
) -> None:
    adql = "SELECT id, a FROM tst.cube WHERE id = 2"
    slow = await _document(conn, adql, ENCODER)
    assert b"<TD>[1, 2] [3, 4]</TD>" in slow  # what the encoder writes
    with pytest.raises(Exception, match="TABLEDATA has no multidimensional arrays"):
        await _document(conn, adql, TD)
    with pytest.raises(Exception, match="cannot be written|multidimensional"):
        await _document(conn, "SELECT id, a FROM tst.cube ORDER BY id", ENCODER)
    fast, slow = await _both(conn, "SELECT id, a FROM tst.cube WHERE id = 1")
    assert fast == slow


FLOAT = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(st.one_of(st.none(), st.lists(FLOAT, max_size=6)), min_size=1, max_size=12)
)
def test_any_drawn_float_arrays_parse_identically(
    db_dsn: str, conn: asyncpg.Connection, arrays: list[list[float | None] | None]
) -> None:
    async def check() -> None:
        db = await asyncpg.connect(db_dsn)
        try:
            await db.execute("TRUNCATE tst.drawn")
            await db.executemany(
                "INSERT INTO tst.drawn VALUES ($1, $2, $3)",
                [(n, a, _real(a)) for n, a in enumerate(arrays)],
            )
            fast, slow = await _both(db, "SELECT * FROM tst.drawn ORDER BY id")
            _assert_parse_identical(fast, slow)
        finally:
            await db.close()

    asyncio.run(check())


def _real(values: list[float | None] | None) -> list[float | None] | None:
    """``values`` that fit a real (the others as infinities, as PostgreSQL
    refuses to round them)."""
    if values is None:
        return None
    return [
        v if v is None or math.isnan(v) or abs(v) < 3e38 else math.copysign(math.inf, v)
        for v in values
    ]

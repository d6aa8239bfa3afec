"""TABLEDATA transcoded from COPY text (the COPY_TEXT path) against the encoder.

Every query runs twice through :func:`run_query` on real PostgreSQL: in the
TABLEDATA format as registered (the COPY_TEXT path where the columns allow) and
in the same format without that path (the cursor and the VOTable encoder, the
reference). Without float columns the two documents are byte-identical;
floats are spelt PostgreSQL's way (``2`` for ``2.0``) but parse to the same
values with astropy. The HTTP tests compare a real runner's and the sync
endpoint's TABLEDATA with BINARY2 of the same rows.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import replace
from typing import Any

import asyncpg
import numpy as np
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from test_result_limits import _status
from testkit import DbSetup

from taprunner.formats.registry import DataPath
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.execute import run_query
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.catalog import TapCatalog

TD = FORMATS["votable/td"]
ENCODER = replace(TD, paths=TD.paths - {DataPath.COPY_TEXT})
ODD = [
    "'a<b>&\"c\"''' || chr(62)",
    "'back\\slash \\N \\\\N'",
    "'tab' || chr(9) || 'new' || chr(10) || 'line' || chr(13) || chr(10) || 'cr'",
    "'héllo 😀 ☃ ünï'",
    "chr(1) || chr(8) || chr(11) || chr(12) || chr(31) || chr(127) || 'ctl'",
    "chr(65534) || chr(65535) || chr(65533) || 'nonchars'",
    "''",
    "NULL",
    "'\\N'",
    "'Infinity'",
    "'-Infinity'",
    "'NaN'",
]
FLOATS = [
    "(102, 2.0, 2.0)",
    "(103, 'NaN', 'NaN')",
    "(104, 'Infinity', 'Infinity')",
    "(105, '-Infinity', '-Infinity')",
    "(106, NULL, NULL)",
    "(107, 1e-300, 1e-30)",
    "(108, -1.7976931348623157e308, 3.4028234e38)",
    "(109, 0.1, 0.1)",
    "(110, -0.0, -0.0)",
    "(111, 1e16, 1e16)",
    "(112, 123456789.123456789, 1234.5678)",
]
SETUP = DbSetup(
    tap_schema=True,
    sql=f"""
        CREATE SCHEMA tst;
        CREATE TABLE tst.odd (
            id integer, i2 smallint, i8 bigint, b boolean, s text, v varchar(80),
            f8 double precision, f4 real, ts timestamp, arr double precision[]
        );
        INSERT INTO tst.odd (id, s, v) VALUES
            {", ".join(f"({n}, {s}, {s})" for n, s in enumerate(ODD, 1))};
        INSERT INTO tst.odd (id, f8, f4) VALUES {", ".join(FLOATS)};
        UPDATE tst.odd SET i2 = CASE id % 3 WHEN 0 THEN NULL WHEN 1 THEN -32768
            ELSE 32767 END, i8 = CASE WHEN id = 4 THEN NULL WHEN id % 2 = 0
            THEN -9223372036854775808 ELSE 9223372036854775807 - id END,
            b = CASE id % 3 WHEN 0 THEN NULL WHEN 1 THEN true ELSE false END,
            ts = '2021-03-04 05:06:07.5', arr = ARRAY[1.5, NULL, 'Infinity'];
        CREATE TABLE tst.long (id integer, s text);
        INSERT INTO tst.long SELECT i, repeat('x', i * 10) FROM generate_series(1, 9) i;
        CREATE TABLE tst.big AS SELECT i AS id FROM generate_series(1, 300000) i;
    """,
    published={"tst.odd": None, "tst.long": None, "tst.big": None},
)
ALL = "SELECT id, i2, i8, b, s, v, f8, f4 FROM tst.odd ORDER BY id"
NO_FLOATS = "SELECT id, i2, i8, b, s, v FROM tst.odd ORDER BY id"


@pytest.fixture
def db_setup() -> DbSetup:
    return SETUP


async def _document(
    conn: asyncpg.Connection,
    adql: str,
    fmt: Any,
    *,
    maxrec: int = 1000,
    limits: ResultLimits | None = None,
) -> bytes:
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=maxrec, format=fmt)
    catalog = await TapCatalog.load(conn)
    await run_query(
        conn, request, catalog, sink, timeout=30, role=None, result_limits=limits
    )
    return b"".join(chunks)


async def _both(conn: asyncpg.Connection, adql: str, **kw: Any) -> tuple[bytes, bytes]:
    """The document of the COPY_TEXT path and the encoder's."""
    return await _document(conn, adql, TD, **kw), await _document(
        conn, adql, ENCODER, **kw
    )


def _table(document: bytes) -> Any:
    return parse(io.BytesIO(document)).get_first_table().array


def _assert_parse_identical(fast: bytes, slow: bytes) -> None:
    a, b = _table(fast), _table(slow)
    assert a.dtype.names == b.dtype.names and len(a) == len(b)
    for name in a.dtype.names:
        assert list(np.ma.getmaskarray(a[name])) == list(np.ma.getmaskarray(b[name]))
        for x, y in zip(a[name].data.tolist(), b[name].data.tolist(), strict=True):
            if isinstance(x, float) and math.isnan(x):
                assert math.isnan(y), name
            else:
                assert x == y and type(x) is type(y), (name, x, y)
    assert _status(fast) == _status(slow)


async def test_text_integers_and_booleans_are_byte_identical(
    conn: asyncpg.Connection,
) -> None:
    fast, slow = await _both(conn, NO_FLOATS)
    assert fast == slow
    table = _table(fast)
    assert table["s"][0] == 'a<b>&"c"\'>'
    assert table["s"][1] == "back\\slash \\N \\\\N"
    assert table["s"][2] == "tab\tnew\nline\r\ncr"
    assert table["s"][4] == "\ufffd" * 5 + "\x7fctl"
    assert table["s"][5] == "\ufffd\ufffd\ufffdnonchars"
    assert table["s"][6] == table["s"][7] == ""  # NULL: an empty TD element
    assert b"<TD>T</TD><TD></TD><TD></TD></TR>\n<TR><TD>8</TD>" in fast
    assert b"<TD>F</TD><TD/><TD/></TR>\n<TR><TD>9</TD>" in fast
    assert table["s"][8] == "\\N" and table["s"][9] == "Infinity"
    assert list(table["b"][:3]) == [True, False, np.ma.masked]


async def test_floats_parse_identically(conn: asyncpg.Connection) -> None:
    fast, slow = await _both(conn, ALL)
    _assert_parse_identical(fast, slow)
    # Taken by the COPY_TEXT path: PostgreSQL's shortest float text.
    assert b"<TD>2</TD>" in fast and b"<TD>2.0</TD>" in slow
    assert b"<TD>+Inf</TD>" in fast and b"<TD>-Inf</TD>" in fast
    assert b"<TD>Infinity</TD>" in fast  # the text column keeps its value
    numbers = await _both(conn, "SELECT id, f8, f4, i8 FROM tst.odd ORDER BY id")
    _assert_parse_identical(*numbers)
    assert b"<TD>-Inf</TD>" in numbers[0] and b"Infinity" not in numbers[0]


async def test_times_arrays_and_points_agree_with_the_encoder(
    conn: asyncpg.Connection,
) -> None:
    for adql in (
        "SELECT id, ts, s FROM tst.odd ORDER BY id",
        "SELECT id, arr FROM tst.odd ORDER BY id",
        "SELECT id, POINT(f8, f8) AS p FROM tst.odd WHERE id = 2",
    ):
        fast, slow = await _both(conn, adql)
        assert fast == slow, adql
    # Computed numbers take COPY_TEXT too.
    fast, slow = await _both(
        conn, "SELECT id, f8 / 2 AS half, i2 * 2 AS twice FROM tst.odd ORDER BY id"
    )
    _assert_parse_identical(fast, slow)
    assert b"<TD>102</TD><TD>1</TD>" in fast and b"<TD>102</TD><TD>1.0</TD>" in slow


async def test_empty_results_and_maxrec(conn: asyncpg.Connection) -> None:
    fast, slow = await _both(conn, "SELECT id, s FROM tst.odd WHERE id < 0")
    assert fast == slow and _status(fast) == ("OK", "")
    for maxrec in (0, 1, 5, 12):
        fast, slow = await _both(conn, NO_FLOATS, maxrec=maxrec)
        assert fast == slow
        assert _status(fast) == ("OVERFLOW", "") and len(_table(fast)) == maxrec
    fast, slow = await _both(conn, NO_FLOATS, maxrec=len(ODD) + len(FLOATS))
    assert fast == slow and _status(fast) == ("OK", "")


async def test_a_value_over_the_limit_cuts_before_its_row(
    conn: asyncpg.Connection,
) -> None:
    adql = "SELECT id, s FROM tst.long ORDER BY id"
    for value_bytes in (5, 35, 60, 90):
        limits = ResultLimits(value_bytes, 10**6)
        fast, slow = await _both(conn, adql, limits=limits)
        assert fast == slow
        assert len(_table(fast)) == min(9, value_bytes // 10)
    # A text of tabs is longer as COPY text than in characters: not cut early.
    fast, slow = await _both(
        conn, "SELECT id, s FROM tst.odd WHERE id = 3", limits=ResultLimits(20, 10**6)
    )
    assert fast == slow and len(_table(fast)) == 1


async def test_the_result_limit_cuts_after_a_row_and_says_so(
    conn: asyncpg.Connection,
) -> None:
    adql = "SELECT id, s FROM tst.long ORDER BY id"
    whole = _table(await _document(conn, adql, TD))
    for result_bytes in (1, 100, 250):
        fast = await _document(conn, adql, TD, limits=ResultLimits(1000, result_bytes))
        value, text = _status(fast)
        assert value == "OVERFLOW"
        assert re.fullmatch(
            rf"result cut at \d+ bytes by tap_result_bytes \({result_bytes} bytes\)",
            text,
        )
        table = _table(fast)
        assert 0 < len(table) < 9
        assert list(table["s"]) == list(whole["s"][: len(table)])
    fast, slow = await _both(conn, adql, limits=ResultLimits(1000, 10**6))
    assert fast == slow and _status(fast) == ("OK", "")


async def test_a_failure_after_rows_ends_the_document_with_it(
    conn: asyncpg.Connection,
) -> None:
    adql = "SELECT id, 1 / (id - 250000) AS x FROM tst.big"  # no sort: rows stream
    with pytest.raises(Exception, match="division by zero"):  # nothing written
        await _document(conn, adql.replace("250000", "1"), TD)
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    catalog = await TapCatalog.load(conn)
    request = TapRequest(query=adql, maxrec=10**6, format=TD)
    with pytest.raises(Exception, match="division by zero"):
        await run_query(conn, request, catalog, sink, timeout=30, role=None)
    document = b"".join(chunks)  # rows went out before the error: it says so
    value, text = _status(document)
    assert value == "ERROR" and "division by zero" in text
    assert 0 < len(_table(document)) < 250_000


async def test_a_failure_after_the_result_was_cut_leaves_it_cut(
    conn: asyncpg.Connection,
) -> None:
    # The cursor path stops reading at the cut and never meets the failing row;
    # the COPY runs on past the cut (its bytes dropped): a failure there must
    # not turn the cut result into a failed query.
    adql = "SELECT id, 1 / (id - 250000) AS x FROM tst.big"  # no sort: rows stream
    limits = ResultLimits(1000, 20_000)
    fast, slow = await _both(conn, adql, maxrec=10**6, limits=limits)
    assert _status(slow)[0] == "OVERFLOW"
    value, text = _status(fast)
    assert value == "OVERFLOW" and text.startswith("result cut at ")
    assert 0 < len(_table(fast)) < 250_000


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
async def test_a_delimited_result_cut_before_a_failure_stays_cut(
    conn: asyncpg.Connection, fmt: str
) -> None:
    # The same on the COPY path of CSV and TSV (copycut.py).
    adql = "SELECT id, 1 / (id - 250000) AS x FROM tst.big"
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    catalog = await TapCatalog.load(conn)
    request = TapRequest(query=adql, maxrec=10**6, format=FORMATS[fmt])
    outcome = await run_query(
        conn,
        request,
        catalog,
        sink,
        timeout=30,
        role=None,
        result_limits=ResultLimits(1000, 20_000),
    )
    assert outcome.cut is not None and outcome.cut.startswith("result cut at ")
    assert 0 < outcome.rows == b"".join(chunks).count(b"\n") - 1 < 250_000

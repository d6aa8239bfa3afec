"""The FETCH path of the fast lane: a result its query bounds below the cursor's
first batch is fetched in one round trip, without a transaction or a cursor,
and comes out byte for byte as the cursor path writes it (nulls, escapes,
MAXREC overflow, values cut by the byte limit, errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from test_tabledata_copy import _assert_parse_identical
from testkit import DbSetup

from aiouws.storage.database import Database
from taprunner.errors import TapQueryError
from taprunner.query.bytelimits import FIRST_ROWS, ResultLimits
from taprunner.query.caches import StatementCache
from taprunner.query.execute import run_query
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.web.fastlane import SESSION_SETUP, lane_connection

ODD = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.odd (id integer, mag real, name text, big bigint,
                              flag boolean, born timestamp);
        INSERT INTO tst.odd
        SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE i / 7.0 END,
               CASE WHEN i % 4 = 0 THEN NULL
                    ELSE 'n<&>"' || i || repeat('x', i * 3) || ' é' END,
               CASE WHEN i % 5 = 0 THEN NULL ELSE i * 10000000000 END,
               CASE WHEN i % 6 = 0 THEN NULL ELSE i % 2 = 0 END,
               timestamp '2020-01-01' + i * interval '1 hour'
        FROM generate_series(1, 150) AS i;
    """,
    published={"tst.odd": None},
)


@pytest.fixture
def db_setup() -> DbSetup:
    return ODD


@pytest.fixture
async def lane(
    db_dsn: str, conn: asyncpg.Connection
) -> AsyncIterator[asyncpg.Connection]:
    """A connection made as the fast lane makes its own (the service's session
    settings, read-only, as the query role), with a timeout, after ``conn``
    set the database up."""
    connection = await lane_connection(Database(db_dsn))
    await connection.execute("SET statement_timeout = 30000")
    try:
        yield connection
    finally:
        await connection.close()


async def _run(
    conn: asyncpg.Connection,
    adql: str,
    *,
    fmt: str = "votable",
    maxrec: int = 1000,
    bound: int | None,
    limits: ResultLimits | None = None,
) -> tuple[bytes, list[str], Any]:
    """The result of ``adql`` on the lane's session, the statements sent for
    it by ``Connection.execute`` (BEGIN, COMMIT: asyncpg logs no prepared
    statement's), and its outcome (or the TapError raised)."""
    chunks: list[bytes] = []
    sent: list[str] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    def logged(record: Any) -> None:
        sent.append(record.query)

    request = TapRequest(query=adql, maxrec=maxrec, format=FORMATS[fmt])
    catalog = await TapCatalog.load(conn)
    conn.add_query_logger(logged)
    try:
        outcome: Any = await run_query(
            conn,
            request,
            catalog,
            sink,
            timeout=30,
            role=QUERY_ROLE,
            statements=StatementCache(),
            session=True,
            rows_bound=bound,
            result_limits=limits or ResultLimits(1 << 20, 1 << 30),
        )
    except TapQueryError as exc:
        outcome = exc
    finally:
        conn.remove_query_logger(logged)
    return b"".join(chunks), sent, outcome


CASES = [
    ("SELECT TOP 20 * FROM tst.odd ORDER BY id", "votable", 1000),
    ("SELECT TOP 20 * FROM tst.odd ORDER BY id", "votable/td", 1000),
    ("SELECT TOP 20 * FROM tst.odd ORDER BY id", "votable/b", 1000),
    ("SELECT * FROM tst.odd ORDER BY id", "votable", 7),  # MAXREC overflow
    ("SELECT TOP 0 * FROM tst.odd", "votable", 1000),
    ("SELECT TOP 5 id, name FROM tst.odd WHERE id > 1000", "votable/td", 1000),
]


@pytest.mark.parametrize(("adql", "fmt", "maxrec"), CASES)
async def test_a_bounded_result_is_fetched_at_once_with_the_same_bytes(
    lane: asyncpg.Connection, adql: str, fmt: str, maxrec: int
) -> None:
    cursor, cursor_sent, cursor_outcome = await _run(
        lane, adql, fmt=fmt, maxrec=maxrec, bound=None
    )
    fetched, fetched_sent, fetched_outcome = await _run(
        lane, adql, fmt=fmt, maxrec=maxrec, bound=min(maxrec, 20)
    )
    if fmt == "votable/td":
        # Unbounded, TABLEDATA takes the text COPY path: floats in
        # PostgreSQL's shortest text, the same values.
        _assert_parse_identical(fetched, cursor)
    else:
        assert fetched == cursor
    assert fetched_outcome == cursor_outcome
    assert any(q.startswith("BEGIN") for q in cursor_sent)
    # No transaction (asyncpg opens no cursor outside one): the prepared
    # statement alone, one round trip.
    assert fetched_sent == []


async def test_the_byte_limits_cut_a_fetched_result_as_they_cut_a_cursor(
    lane: asyncpg.Connection,
) -> None:
    adql = "SELECT TOP 30 id, name FROM tst.odd ORDER BY id"
    # A value over 40 bytes cuts the result before its row; 700 bytes of
    # result cut nothing here (one batch), on either path.
    for limits, cut in (
        (ResultLimits(40, 1 << 30), True),
        (ResultLimits(1 << 20, 700), False),
    ):
        cursor, _, cursor_outcome = await _run(lane, adql, bound=None, limits=limits)
        fetched, sent, fetched_outcome = await _run(lane, adql, bound=30, limits=limits)
        assert fetched == cursor
        assert fetched_outcome == cursor_outcome
        assert (fetched_outcome.cut is not None) is cut
        assert (b'value="OVERFLOW"' in fetched) is cut
        assert sent == []


async def test_a_failing_query_fails_alike(lane: asyncpg.Connection) -> None:
    adql = "SELECT TOP 3 id / (id - 2) AS q FROM tst.odd ORDER BY id"
    cursor, _, cursor_error = await _run(lane, adql, bound=None)
    fetched, _, fetched_error = await _run(lane, adql, bound=3)
    assert isinstance(fetched_error, TapQueryError)
    assert str(fetched_error) == str(cursor_error)
    assert fetched == cursor == b""


async def test_larger_or_unknown_bounds_keep_the_cursor(
    lane: asyncpg.Connection,
) -> None:
    adql = "SELECT * FROM tst.odd ORDER BY id"
    for bound in (None, FIRST_ROWS, 1000):
        _, sent, outcome = await _run(lane, adql, bound=bound)
        assert any(q.startswith("BEGIN") for q in sent)
        assert outcome.rows == 150


async def test_a_fetched_query_is_not_jit_compiled(lane: asyncpg.Connection) -> None:
    """The cursor path and the FETCH path run without JIT compilation
    (``SESSION_SETTINGS``: a 0.2 ms cone search was costed above
    ``jit_above_cost`` and compiled for 15 ms), though every query is costed
    over the threshold here."""
    plans: list[str] = []
    lane.add_log_listener(lambda _conn, message: plans.append(str(message)))
    await lane.execute(
        "RESET ROLE; LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;"
        " SET auto_explain.log_level = 'notice'; SET jit_above_cost = 0;"
        f" {SESSION_SETUP}"
    )
    await TapCatalog.load(lane)  # its own queries' plans are not the point
    adql = "SELECT TOP 20 * FROM tst.odd WHERE id * 2 > 3 ORDER BY id"
    for bound in (None, 20):  # the cursor path, then the FETCH path
        plans.clear()
        await _run(lane, adql, maxrec=1000, bound=bound)
        ours = [plan for plan in plans if "FROM tst.odd" in plan]
        assert ours, plans
        assert not any("JIT" in plan for plan in ours), (bound, ours)


async def test_the_fetch_path_runs_without_jit(
    conn: asyncpg.Connection, lane: asyncpg.Connection
) -> None:
    # Queries run with jit off (981c8f5: a cone on a big table was JIT-compiled,
    # 15 ms for 0.2 ms of work), a setting of the lane's session, which the
    # FETCH path runs on with no transaction. A view reports the setting.
    await conn.execute(
        "CREATE VIEW tst.jit AS SELECT id, current_setting('jit') AS jit"
        f' FROM tst.odd; GRANT SELECT ON tst.jit TO "{QUERY_ROLE}";'
        " INSERT INTO tap_schema.tables (schema_name, table_name, table_type)"
        " VALUES ('tst', 'tst.jit', 'view');"
        " INSERT INTO tap_schema.columns (table_name, column_name, datatype)"
        " VALUES ('tst.jit', 'id', 'int'), ('tst.jit', 'jit', 'char')"
    )
    for bound in (5, None):  # the FETCH path, then the cursor's
        body, _, outcome = await _run(
            lane, "SELECT TOP 5 jit FROM tst.jit", fmt="votable/td", bound=bound
        )
        assert not isinstance(outcome, TapQueryError), outcome
        assert body.count(b"<TD>off</TD>") == 5, (bound, body[-300:])

"""The columnar path (ADBC + Arrow) against the asyncpg path, on a real PostgreSQL.

Both must give the same rows byte for byte (base64 line breaks aside), the same
NULL handling, MAXREC overflow and errors; the columnar session must run as the
read-only query role, honour the statement timeout and cancel its query when the
job's task is cancelled.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from querywatch import eventually, final, submit
from testkit import DbSetup, MakeClient

from aiouws.config import Settings
from aiouws.storage.database import Database
from taprunner.errors import TapQueryError, TapUsageError
from taprunner.formats.fields import FieldSpec, field_for_pg_type
from taprunner.formats.votable import VOTableEncoder
from taprunner.query.caches import StatementCache
from taprunner.query.columnar import APPLICATION_NAME, ColumnarSession
from taprunner.query.execute import run_query
from taprunner.query.outcome import ColumnarUnavailable, QueryOutcome
from taprunner.request import parse_request
from taprunner.schema import tapschema
from taprunner.schema.catalog import TapCatalog
from taprunner.schema.tapschema import QUERY_ROLE
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

TABLE = """
CREATE TABLE odd (
    id bigint, small smallint, n integer, ra double precision, mag real,
    flag boolean, name text, code varchar(8), fixed char(3)
);
INSERT INTO odd VALUES
 (9223372036854775807, 32767, 2147483647, 1.5, 2.25, true,
  'héllo 😀 ☃', 'ab', 'x'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (-9223372036854775807, -32768, -2147483648, 'NaN', 'Infinity', false, '', '', ''),
 (42, 0, 0, '-Infinity', -1e-30, NULL, 'a<b>&"c"' || chr(13) || chr(10) || 'd',
  'x y', 'abc'),
 (7, 1, 2, 0.1, 0.2, true, 'plain ascii', NULL, NULL);
CREATE TABLE secret (x integer);
INSERT INTO secret VALUES (1);
"""
ODD = "SELECT * FROM odd ORDER BY id NULLS FIRST"
SLOW = "SELECT 1::integer AS one FROM pg_sleep(30)"


@pytest.fixture
def db_setup() -> DbSetup:
    return DbSetup(
        tap_schema=True,
        sql=TABLE
        + f"GRANT SELECT ON odd TO {QUERY_ROLE};"
        + f"CREATE SEQUENCE counter; GRANT USAGE ON counter TO {QUERY_ROLE}",
    )


@pytest.fixture
async def session(
    db_dsn: str, conn: asyncpg.Connection
) -> AsyncIterator[ColumnarSession]:
    s = ColumnarSession(Database(db_dsn))
    yield s
    s.close()


async def _described(
    conn: asyncpg.Connection, sql: str
) -> tuple[list[FieldSpec], list[str]]:
    attributes = (await conn.prepare(sql)).get_attributes()
    types = [a.type.name for a in attributes]
    return [field_for_pg_type(a.name, a.type.name) for a in attributes], types


async def _fields(conn: asyncpg.Connection, sql: str) -> list[FieldSpec]:
    return (await _described(conn, sql))[0]


async def _columnar(
    session: ColumnarSession,
    conn: asyncpg.Connection,
    sql: str,
    *,
    serialization: str = "binary2",
    maxrec: int = 1000,
    timeout: float = 10.0,
) -> tuple[bytes, QueryOutcome]:
    """``sql`` through the session, described (FIELDs, types) on ``conn``."""
    fields, types = await _described(conn, sql)
    encoder = VOTableEncoder(fields, serialization=serialization)  # type: ignore[arg-type]
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    try:
        outcome = await session.run(sql, encoder, types, maxrec, timeout, sink)
    except TapQueryError as exc:
        exc.add_note(b"".join(parts).decode())
        raise
    return b"".join(parts), outcome


async def _asyncpg(
    conn: asyncpg.Connection, fields: list[FieldSpec], sql: str, serialization: str
) -> bytes:
    encoder = VOTableEncoder(fields, serialization=serialization)  # type: ignore[arg-type]
    rows = await conn.fetch(sql)
    return b"".join([encoder.header(), encoder.encode(rows), encoder.footer()])


_STREAM = re.compile(rb'(.*<STREAM encoding="base64">\n)(.*?)(</STREAM>.*)', re.S)


def _split(document: bytes) -> tuple[bytes, bytes, bytes]:
    """Head, decoded row bytes and tail of a binary VOTable document."""
    found = _STREAM.match(document)
    assert found is not None, document[:500]
    rows = base64.b64decode(re.sub(rb"\s+", b"", found.group(2)))
    return found.group(1), rows, found.group(3)


@pytest.mark.parametrize("serialization", ["binary2", "binary"])
async def test_same_bytes_as_the_asyncpg_path(
    conn: asyncpg.Connection, session: ColumnarSession, serialization: str
) -> None:
    fields = await _fields(conn, ODD)
    columnar, outcome = await _columnar(session, conn, ODD, serialization=serialization)
    expected = await _asyncpg(conn, fields, ODD, serialization)
    assert outcome == QueryOutcome(5, False)
    assert _split(columnar) == _split(expected)
    table = parse(io.BytesIO(columnar)).get_first_table().array
    assert table["id"].mask[0] and table["small"].mask[0]  # the NULL row
    # rows in id order: NULL, -max, 7, 42, max
    assert table["name"][4] == "héllo 😀 ☃"
    assert table["name"][3] == 'a<b>&"c"\r\nd'
    assert table["id"][4] == 9223372036854775807
    assert math.isnan(table["ra"].data[1]) and math.isinf(table["mag"].data[1])
    assert table["fixed"][4] == "x  "  # char(3) keeps its padding, as asyncpg does
    assert bool(table["flag"][1]) is False and table["flag"].mask[3]


async def test_many_batches_agree_and_maxrec_overflows(
    conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    sql = (
        "SELECT i::bigint AS id, i * 0.5::float8 AS x, (i % 3 = 0) AS even3,"
        " CASE WHEN i % 7 = 0 THEN NULL ELSE 'row ' || i || repeat('é', i % 4) END"
        " AS label FROM generate_series(1, 60000) AS i"
    )
    fields = await _fields(conn, sql)
    columnar, outcome = await _columnar(session, conn, sql, maxrec=100_000)
    assert outcome == QueryOutcome(60000, False)
    assert _split(columnar) == _split(await _asyncpg(conn, fields, sql, "binary2"))
    capped, outcome = await _columnar(session, conn, sql, maxrec=45_001)
    assert outcome == QueryOutcome(45_001, True)
    head, rows, tail = _split(capped)
    first = await _asyncpg(conn, fields, f"{sql} LIMIT 45001", "binary2")
    assert rows == _split(first)[1]  # the same first 45,001 rows
    table = parse(io.BytesIO(capped)).get_first_table().array
    assert len(table) == 45_001 and table["id"][-1] == 45_001
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in tail


async def test_empty_result(conn: asyncpg.Connection, session: ColumnarSession) -> None:
    sql = "SELECT id, name FROM odd WHERE false"
    document, outcome = await _columnar(session, conn, sql)
    assert outcome == QueryOutcome(0, False)
    assert _split(document)[1] == b""
    assert len(parse(io.BytesIO(document)).get_first_table().array) == 0


async def test_runs_read_only_as_the_query_role(
    conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    sql = (
        "SELECT current_user::text AS who,"
        " current_setting('transaction_read_only') AS ro,"
        " current_setting('statement_timeout') AS limit_,"
        " current_setting('jit') AS jit"
    )
    document, _ = await _columnar(session, conn, sql, timeout=12.5)
    row = parse(io.BytesIO(document)).get_first_table().array[0]
    got = (row["who"], row["ro"], row["limit_"], row["jit"])
    assert got == (QUERY_ROLE, "on", "12500ms", "off")
    sql = "SELECT nextval('counter') AS n"  # the role may use the sequence
    with pytest.raises(TapQueryError, match="read-only transaction"):
        await _columnar(session, conn, sql)
    with pytest.raises(TapUsageError, match="not allowed: permission denied"):
        await _columnar(session, conn, "SELECT x FROM secret")


async def test_statement_timeout_cancels_and_the_session_recovers(
    conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    with pytest.raises(TapQueryError, match=r"query cancelled: .*\(limit 0.2 s\)"):
        await _columnar(session, conn, SLOW, timeout=0.2)
    document, outcome = await _columnar(session, conn, "SELECT 1::integer AS one")
    assert outcome == QueryOutcome(1, False)


async def test_error_after_rows_went_out_ends_the_document(
    conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    sql = (
        "SELECT 100 / (50000 - i) AS q, repeat('x', 100) AS pad"
        " FROM generate_series(1, 60000) AS i"
    )
    with pytest.raises(TapQueryError, match="division by zero") as raised:
        await _columnar(session, conn, sql, maxrec=100_000)
    document = raised.value.__notes__[0].encode()
    assert (
        b'<INFO name="QUERY_STATUS" value="ERROR">query failed: division by zero'
        in (document)
    )
    assert document.endswith(b"</VOTABLE>\n")
    assert len(_split(document)[1]) > 0  # rows had been written


async def test_cancelled_task_cancels_the_query_in_postgresql(
    db_dsn: str, conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    task = asyncio.ensure_future(_columnar(session, conn, SLOW, timeout=60))

    async def running() -> bool:
        return await _sessions(db_dsn, active=True) == 1

    await eventually(running, "columnar query running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)

    async def gone() -> bool:
        return await _sessions(db_dsn, active=True) == 0

    await eventually(gone, "columnar query cancelled in PostgreSQL")
    _, outcome = await _columnar(session, conn, "SELECT 2::integer AS one")
    assert outcome == QueryOutcome(1, False)
    assert await _sessions(db_dsn) == 1  # the cancelled one was closed, not leaked


async def _sessions(dsn: str, *, active: bool = False) -> int:
    """The columnar sessions of this test's database (only those running a query)."""
    c = await asyncpg.connect(dsn)
    try:
        return int(
            await c.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                " AND datname = current_database() AND (state = 'active' OR NOT $2)",
                APPLICATION_NAME,
                active,
            )
        )
    finally:
        await c.close()


async def _tap_query(
    conn: asyncpg.Connection,
    adql: str,
    columnar: ColumnarSession,
    statements: StatementCache | None = None,
) -> tuple[bytes, QueryOutcome]:
    """``adql`` through run_query, as a runner runs it."""
    catalog = await TapCatalog.load(conn)
    request = parse_request(
        {"query": [adql], "lang": ["ADQL"]}, maxrec_default=1000, maxrec_hard=1000
    )
    parts: list[bytes] = []

    async def sink(data: bytes) -> None:
        parts.append(data)

    outcome = await run_query(
        conn,
        request,
        catalog,
        sink,
        timeout=10,
        statements=statements,
        columnar=columnar,
    )
    return b"".join(parts), outcome


async def test_unreachable_columnar_session_leaves_the_query_to_asyncpg(
    conn: asyncpg.Connection,
) -> None:
    await tapschema.publish(conn, "public.odd")
    session = ColumnarSession(
        Database("postgresql://nobody@/nowhere?host=/nonexistent")
    )
    try:
        with pytest.raises(ColumnarUnavailable):
            await _columnar(session, conn, "SELECT 1::integer AS one")
        document, outcome = await _tap_query(conn, "SELECT id, name FROM odd", session)
    finally:
        session.close()
    assert outcome == QueryOutcome(5, False)
    assert len(parse(io.BytesIO(document)).get_first_table().array) == 5


async def test_lost_connection_falls_back_then_reconnects(
    db_dsn: str, conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    await tapschema.publish(conn, "public.odd")
    await _tap_query(conn, "SELECT id FROM odd", session)
    assert await _sessions(db_dsn) == 1
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = $1",
        APPLICATION_NAME,
    )
    _, outcome = await _tap_query(conn, "SELECT id FROM odd", session)
    assert outcome == QueryOutcome(5, False)  # served by asyncpg, no error
    _, outcome = await _tap_query(conn, "SELECT id FROM odd", session)
    assert outcome == QueryOutcome(5, False)
    assert await _sessions(db_dsn) == 1  # columnar again, on a new connection


async def test_changed_column_type_is_described_again(
    conn: asyncpg.Connection, session: ColumnarSession
) -> None:
    """A cached statement still describes the old type; the Arrow schema tells."""
    await conn.execute(
        "CREATE TABLE changing (n integer); INSERT INTO changing VALUES (1), (2)"
    )
    await tapschema.publish(conn, "public.changing")
    statements = StatementCache()
    document, _ = await _tap_query(conn, "SELECT n FROM changing", session, statements)
    assert list(parse(io.BytesIO(document)).get_first_table().array["n"]) == [1, 2]
    await conn.execute(
        "ALTER TABLE changing ALTER COLUMN n TYPE bigint;"
        " UPDATE changing SET n = n + 4294967296"
    )
    document, _ = await _tap_query(conn, "SELECT n FROM changing", session, statements)
    table = parse(io.BytesIO(document)).get_first_table()
    assert table.fields[0].datatype == "long"
    assert sorted(table.array["n"]) == [4294967297, 4294967298]


@pytest.mark.parametrize(
    ("columnar", "source"), [(True, "adbc"), (True, "copy"), (False, "adbc")]
)
async def test_runner_takes_the_columnar_path_unless_turned_off(
    settings: Settings, aiohttp_client: MakeClient, columnar: bool, source: str
) -> None:
    config = TapSettings.for_service(
        settings, columnar=columnar, columnar_source=source, slots=1, inline_rows=0
    )
    client = await aiohttp_client(create_tap_app(settings, config, demo_rows=2000))
    job = await submit(
        client,
        QUERY="SELECT id, ra, mag, name FROM demo.stars ORDER BY id",
        MAXREC="1500",
    )
    assert await final(client, job) == "COMPLETED"
    body = await (await client.get(f"/tap/async/{job}/results/result")).read()
    table = parse(io.BytesIO(body)).get_first_table().array
    assert len(table) == 1500 and list(table["id"][:3]) == [1, 2, 3]
    assert table["name"][0] == "DEMO 1"
    assert b'value="OVERFLOW"' in body
    assert settings.dsn is not None
    sessions = await _sessions(settings.dsn)
    # The runner keeps its ADBC session warm; binary COPY uses its asyncpg one.
    assert sessions == (1 if columnar and source == "adbc" else 0)

"""A COPY whose result a byte limit cut short stops in PostgreSQL at once.

The three COPY paths (CSV/TSV by COPY, TABLEDATA from COPY text, BINARY2 by
binary COPY) cancel their statement once the cut is known
(:class:`taprunner.query.outcome.HeldSink`): a query of 90,000,000,000 cheap
rows with a small byte limit ends in seconds, not after MAXREC + 1 rows, with
the same document as a COPY that runs to its end; its backend is idle at once
and the connection serves the next query. The HTTP test runs a real runner.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from astropy.io.votable import parse  # type: ignore[import-untyped]
from test_result_limits import _status
from testkit import Client, DbSetup
from yarl import URL

from aiouws.config import Settings
from aiouws.storage.database import Database
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.execute import run_query
from taprunner.query.outcome import QueryOutcome
from taprunner.request import FORMATS, TapRequest
from taprunner.schema.catalog import TapCatalog
from taprunner.settings import TapSettings

SETUP = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.big AS SELECT i AS id FROM generate_series(1, 300000) i;
        CREATE TABLE tst.named AS
            SELECT i AS id, 'name ' || i AS name FROM generate_series(1, 300000) i;
    """,
    published={"tst.big": None, "tst.named": None},
)
#: 9 × 10^10 rows, each cheap: without a stop the COPY would run for hours.
HUGE = "SELECT a.id, b.id AS id2 FROM tst.big AS a, tst.big AS b"
HUGE_NAMED = "SELECT a.id, b.name FROM tst.big AS a, tst.named AS b"
#: Seconds the huge queries may take in all (they take well under one).
PROMPTLY = 60
LIMITS = ResultLimits(1000, 200_000)
#: The formats of the three COPY paths: (format, binary COPY on the connection).
PATHS = [("csv", False), ("votable/td", False), ("votable", True)]


@pytest.fixture
def db_setup() -> DbSetup:
    return SETUP


@pytest.fixture
async def own(
    conn: asyncpg.Connection, db_dsn: str
) -> AsyncIterator[asyncpg.Connection]:
    """A connection made as the service makes its own (a ServerConnection),
    once the database is set up (``conn``)."""
    made = await Database(db_dsn).connect(name="runner")
    try:
        yield made
    finally:
        await made.close()


async def _run(
    conn: asyncpg.Connection,
    adql: str,
    fmt: str,
    binary_copy: bool,
    database: Database | None,
    *,
    maxrec: int = 10**12,
) -> tuple[bytes, QueryOutcome]:
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    request = TapRequest(query=adql, maxrec=maxrec, format=FORMATS[fmt])
    catalog = await TapCatalog.load(conn)
    outcome = await run_query(
        conn,
        request,
        catalog,
        sink,
        timeout=3600,
        role=None,
        binary_copy=binary_copy,
        result_limits=LIMITS,
        database=database,
    )
    return b"".join(chunks), outcome


async def _state(dsn: str, pid: int) -> tuple[str, str]:
    """The state of backend ``pid`` and its last query, seen from elsewhere."""
    watcher = await asyncpg.connect(dsn)
    try:
        row = await watcher.fetchrow(
            "SELECT state, query FROM pg_stat_activity WHERE pid = $1", pid
        )
    finally:
        await watcher.close()
    assert row is not None
    return row["state"], row["query"]


@pytest.mark.parametrize(("fmt", "binary_copy"), PATHS)
@pytest.mark.parametrize("adql", [HUGE, HUGE_NAMED])
async def test_a_cut_copy_stops_at_once_and_the_connection_goes_on(
    own: asyncpg.Connection, db_dsn: str, fmt: str, binary_copy: bool, adql: str
) -> None:
    async with asyncio.timeout(PROMPTLY):  # else it runs for hours
        document, outcome = await _run(own, adql, fmt, binary_copy, Database(db_dsn))
    assert outcome.cut is not None
    assert outcome.cut.startswith("result cut at "), outcome.cut
    assert 0 < outcome.rows < 200_000 and not outcome.overflow
    if fmt != "csv":
        value, text = _status(document)
        assert value == "OVERFLOW" and text == outcome.cut
        table = parse(io.BytesIO(document)).get_first_table().array
        assert len(table) == outcome.rows
    else:
        assert document.count(b"\n") == outcome.rows + 1  # and the header
    # The backend has ended the COPY and its transaction.
    state, query = await _state(db_dsn, own.get_server_pid())
    assert state == "idle", (state, query)
    # The same connection runs the next query.
    document, outcome = await _run(
        own, "SELECT TOP 3 id FROM tst.big ORDER BY id", fmt, binary_copy, None
    )
    assert outcome == QueryOutcome(3, False, None)


@pytest.mark.parametrize(("fmt", "binary_copy"), PATHS)
async def test_the_cut_document_is_the_one_of_a_copy_run_to_its_end(
    own: asyncpg.Connection, db_dsn: str, fmt: str, binary_copy: bool
) -> None:
    # 300,000 rows: a COPY left to run to its end ends soon too.
    adql = "SELECT b.id, b.name FROM tst.named AS b"
    stopped = await _run(own, adql, fmt, binary_copy, Database(db_dsn))
    run_out = await _run(own, adql, fmt, binary_copy, None)
    assert stopped[1].cut is not None
    if not binary_copy:
        assert stopped == run_out
        return
    # The binary path cuts after the chunk asyncpg handed over that reached the
    # limit: chunks vary from run to run, with or without a stop.
    tables = [
        parse(io.BytesIO(d)).get_first_table().array for d, _ in (stopped, run_out)
    ]
    short, long = sorted(tables, key=len)
    assert list(short["id"]) == list(long["id"][: len(short)])
    for document, outcome in (stopped, run_out):
        assert _status(document) == ("OVERFLOW", outcome.cut)
        assert outcome.cut == (
            f"result cut at {outcome.cut.split()[3]} bytes by tap_result_bytes"
            " (200000 bytes)"
        )


async def test_a_sync_query_cut_short_stops_its_copy(
    conn: asyncpg.Connection, client: Client, db_dsn: str
) -> None:
    for fmt in ("csv", "votable/td"):
        async with asyncio.timeout(PROMPTLY):
            resp = await client.post(
                "/tap/sync",
                data={
                    "LANG": "ADQL",
                    "QUERY": HUGE,
                    "RESPONSEFORMAT": fmt,
                    "MAXREC": "100000000",
                },
            )
            try:
                body = await resp.read()
            except Exception:  # a cut CSV response ends without its last chunk
                body = b""
        assert resp.status == 200
        if fmt != "csv":
            value, text = _status(body)
            assert value == "OVERFLOW" and "tap_sync_bytes (200000 bytes)" in text
        await _assert_no_copy_left(db_dsn)


async def test_a_runner_stops_a_cut_copy_and_runs_its_next_job(
    conn: asyncpg.Connection, client: Client, db_dsn: str
) -> None:
    for fmt in ("votable/td", "csv", "votable/td"):
        async with asyncio.timeout(PROMPTLY):
            job = await _run_job(client, HUGE, fmt)
        assert await (await client.get(f"{job}/phase")).text() == "COMPLETED"
        summary = await (await client.get(job)).text()
        assert "result cut at " in summary and "tap_result_bytes" in summary
        await _assert_no_copy_left(db_dsn)
    # The next job of the same runner (one slot) works.
    job = await _run_job(client, "SELECT TOP 5 id FROM tst.big", "votable/td")
    assert await (await client.get(f"{job}/phase")).text() == "COMPLETED"
    body = await (await client.get(f"{job}/results/result")).read()
    assert _status(body) == ("OK", "")
    assert len(parse(io.BytesIO(body)).get_first_table().array) == 5


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return replace(settings, slots_per_kind=1)


@pytest.fixture
def app_tap(app_settings: Settings) -> TapSettings:
    return TapSettings.for_service(
        app_settings,
        slots=1,
        inline_rows=0,
        sync_bytes=200_000,
        result_bytes=200_000,
        maxrec_hard=10**9,
    )


async def _run_job(client: Client, query: str, fmt: str) -> str:
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "QUERY": query,
            "RESPONSEFORMAT": fmt,
            "MAXREC": "1000000000",
            "PHASE": "RUN",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    job = URL(resp.headers["Location"]).path
    while True:
        phase = await (await client.get(f"{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return job
        await client.get(f"{job}?WAIT=5&PHASE={phase}")


async def _assert_no_copy_left(dsn: str) -> None:
    """No backend still runs a COPY (a runner's or the sync pool's)."""
    watcher = await asyncpg.connect(dsn)
    try:
        copies = await watcher.fetch(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE query ILIKE 'COPY%' AND state = 'active'"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await watcher.close()
    assert not copies, copies

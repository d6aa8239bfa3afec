"""TAP queries run without JIT (981c8f5; ``SESSION_SETTINGS`` of
aiouws.storage.database): a published view reports the setting the query ran
with, for sync queries (bounded by TOP, by MAXREC, as CSV; the sync pool) and an
async Parquet job (a runner). Every connection the service makes for queries
has it, kept across the pool's reset: the service's login, the query role's,
the pool's and a replica's (failing over to the primary). The fast lane's
paths: test_fetch_path; the columnar session: test_columnar."""

from __future__ import annotations

import io
import os

import asyncpg
import pyarrow.parquet as pq
import pytest
import testdb
from querywatch import final, submit
from testkit import Client, DbSetup

from aiouws.storage import database
from aiouws.storage.database import Database
from taprunner.schema.tapschema import QUERY_ROLE

VIEW = DbSetup(
    tap_schema=True,
    sql="""
        CREATE SCHEMA tst;
        CREATE TABLE tst.settings (id integer, jit text, x double precision);
    """,
    published={"tst.settings": None},
)


@pytest.fixture
def db_setup() -> DbSetup:
    return VIEW


@pytest.fixture(autouse=True)
async def as_a_view(conn: asyncpg.Connection) -> None:
    """The published table replaced by a view of the session's setting."""
    await conn.execute(
        f"""DROP TABLE tst.settings;
        CREATE VIEW tst.settings AS SELECT 1 AS id,
            current_setting('jit') AS jit, 1.5::double precision AS x;
        GRANT SELECT ON tst.settings TO "{QUERY_ROLE}";"""
    )


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT TOP 5 jit FROM tst.settings", {}),
        ("SELECT jit FROM tst.settings", {"MAXREC": "1000"}),
        ("SELECT jit FROM tst.settings", {"RESPONSEFORMAT": "csv"}),
    ],
    ids=["top", "maxrec", "csv"],
)
async def test_a_sync_query_runs_without_jit(
    client: Client, query: str, params: dict[str, str]
) -> None:
    response = await client.get(
        "/tap/sync",
        params={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv", **params},
    )
    text = await response.text()
    assert response.status == 200, text
    assert text.split() == ["jit", "off"]


async def test_an_async_parquet_query_runs_without_jit(
    client: Client, db_dsn: str
) -> None:
    job = await submit(
        client,
        QUERY="SELECT id, x, jit FROM tst.settings",
        RESPONSEFORMAT="parquet",
    )
    assert await final(client, job) == "COMPLETED"
    result = await client.get(f"/tap/async/{job}/results/result")
    table = pq.read_table(io.BytesIO(await result.read()))
    assert table.column("jit").to_pylist() == ["off"]
    runner = await testdb.job_row(db_dsn, job, columns="runner_pid")
    assert runner["runner_pid"] != os.getpid()  # a runner process ran it


async def test_an_async_query_in_the_fast_lane_runs_without_jit(
    client: Client, db_dsn: str
) -> None:
    job = await submit(
        client, QUERY="SELECT TOP 5 jit FROM tst.settings", RESPONSEFORMAT="csv"
    )
    assert await final(client, job) == "COMPLETED"
    result = await client.get(f"/tap/async/{job}/results/result")
    assert (await result.text()).split() == ["jit", "off"]
    lane = await testdb.job_row(db_dsn, job, columns="runner_pid")
    assert lane["runner_pid"] == os.getpid()  # the server's lane ran it


async def test_every_session_the_service_makes_runs_without_jit(db_dsn: str) -> None:
    down = "postgresql://nobody@127.0.0.1:1/nothing"  # refused at once
    service = Database(db_dsn)
    replicas = Database(db_dsn, replicas=(down,))
    for made in (service, service.for_queries(), service.writable(), replicas):
        conn = await made.connect(name="test")
        try:
            await conn.execute("SET jit = on; RESET ALL")  # as the sync pool's reset
            assert await conn.fetchval("SHOW jit") == "off", made
        finally:
            await conn.close()
    database._down_until.pop(down, None)
    for made in (service.for_queries(), replicas):
        pool = await made.create_pool(min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                await conn.execute("SET jit = on")
            async with pool.acquire() as conn:  # reset on release
                assert await conn.fetchval("SHOW jit") == "off", made
        finally:
            await pool.close()
    database._down_until.pop(down, None)

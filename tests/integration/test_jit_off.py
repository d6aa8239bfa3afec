"""TAP queries run without JIT (981c8f5, ``SET LOCAL jit = off``): a published
view reports the setting the query ran with, for sync queries (bounded by TOP,
by MAXREC, as CSV) and an async Parquet job. All of these run in the
read-only transaction that sets it: the fast lane's FETCH path and the
columnar session, which do not set it, are not reached here."""

from __future__ import annotations

import io

import asyncpg
import pyarrow.parquet as pq
import pytest
from querywatch import final, submit
from testkit import Client, DbSetup

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


async def test_an_async_parquet_query_runs_without_jit(client: Client) -> None:
    job = await submit(
        client,
        QUERY="SELECT id, x, jit FROM tst.settings",
        RESPONSEFORMAT="parquet",
    )
    assert await final(client, job) == "COMPLETED"
    result = await client.get(f"/tap/async/{job}/results/result")
    table = pq.read_table(io.BytesIO(await result.read()))
    assert table.column("jit").to_pylist() == ["off"]

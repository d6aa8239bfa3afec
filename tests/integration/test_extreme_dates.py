"""Impossible dates are a 400 at the request, and no stored time, however
extreme, makes a GET of the job fail (before: DESTRUCTION=0001-01-01 made every
GET of the job a 500 until the reaper ran)."""

from __future__ import annotations

import asyncpg
import pytest
from testkit import Client
from yarl import URL

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
CREATE = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}


async def create(client: Client, **extra: str) -> str:
    resp = await client.post(
        "/tap/async", data={**CREATE, **extra}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    return URL(resp.headers["Location"]).path


@pytest.mark.parametrize(
    "when", ["0001-01-01", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
)
async def test_impossible_destruction_is_refused(client: Client, when: str) -> None:
    resp = await client.post("/tap/async", data={**CREATE, "DESTRUCTION": when})
    assert resp.status == 400 and "DESTRUCTION" in await resp.text()
    job = await create(client)
    resp = await client.post(f"{job}/destruction", data={"DESTRUCTION": when})
    assert resp.status == 400 and "before 1970" in await resp.text()
    assert (await client.get(job)).status == 200


async def test_far_future_destruction_is_clamped(client: Client) -> None:
    job = await create(client, DESTRUCTION="9999-12-31T23:59:59Z")
    text = await (await client.get(f"{job}/destruction")).text()
    assert text.startswith("20") and text.endswith("Z")


@pytest.mark.parametrize(
    "stored",
    [
        "0001-01-01 00:00:00+00",
        "0001-01-01 00:00:00+00 BC",
        "9999-12-31 23:59:59.999+00",
        "12000-01-01 00:00:00+00",
        "infinity",
        "-infinity",
    ],
)
async def test_any_stored_time_is_served(
    client: Client, db_dsn: str, stored: str, assert_valid: object
) -> None:
    job = await create(client)
    conn = await asyncpg.connect(db_dsn)
    try:
        await conn.execute(
            "UPDATE uws.job SET destruction_time = $1::text::timestamptz,"
            " quote = $1::text::timestamptz WHERE job_id = $2",
            stored,
            job.rsplit("/", 1)[1],
        )
    finally:
        await conn.close()
    for path in (job, f"{job}/destruction", f"{job}/quote", "/tap/async"):
        resp = await client.get(path)
        assert resp.status == 200, (path, resp.status, await resp.text())
    text = await (await client.get(f"{job}/destruction")).text()
    assert text.endswith("Z") and text[:4].isdigit(), text

"""The async TAP fast lane: small queries run in the server process itself.

The app runs in this test process (aiohttp's test client), so a job run in the
lane has this process's pid as its runner pid, and a job run by a runner has
another one.
"""

from __future__ import annotations

import asyncio
import io
import os
from dataclasses import replace
from functools import partial

import asyncpg
import pytest
import testdb
from astropy.io.votable import parse  # type: ignore[import-untyped]
from querywatch import eventually, final, submit, until_running
from testkit import Client, MakeClient

from aiouws.config import Settings
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

#: Slow in PostgreSQL, yet at most one row: the lane takes it.
SLOW_ONE = (
    "SELECT TOP 1 COUNT(*) AS n FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"
)


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, slots=1)


#: A job's row: who ran it and when.
job_row = partial(
    testdb.job_row,
    columns="runner_pid, error_message, job_info, queued_time, start_time, end_time,"
    " phase::text AS phase",
)


async def test_a_small_query_runs_in_the_server_and_a_big_one_in_a_runner(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    small = await submit(client, QUERY="SELECT TOP 3 id, mag FROM demo.stars")
    capped = await submit(client, QUERY="SELECT id FROM demo.stars", MAXREC="5")
    big = await submit(client, QUERY="SELECT id FROM demo.stars")
    for job in (small, capped, big):
        assert await final(client, job) == "COMPLETED"
    row = await job_row(settings.dsn, small)
    assert row["runner_pid"] == os.getpid()
    # Created with RUN into a free lane slot: inserted EXECUTING, never queued.
    assert row["queued_time"] == row["start_time"]
    assert (await job_row(settings.dsn, capped))["runner_pid"] == os.getpid()
    assert (await job_row(settings.dsn, big))["runner_pid"] != os.getpid()
    body = await (await client.get(f"/tap/async/{small}/results/result")).read()
    table = parse(io.BytesIO(body)).get_first_table()
    assert len(table.array) == 3 and table.array["mag"].dtype.kind == "f"
    document = await (await client.get(f"/tap/async/{small}")).text()
    assert '<note key="rows">3</note>' in document
    capped_body = await (await client.get(f"/tap/async/{capped}/results/result")).read()
    assert b'name="QUERY_STATUS" value="OVERFLOW"' in capped_body


async def test_a_failing_small_query_ends_in_error_with_a_dali_document(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    job = await submit(client, QUERY="SELECT TOP 1 1/0 AS x FROM demo.stars")
    assert await final(client, job) == "ERROR"
    assert (await job_row(settings.dsn, job))["runner_pid"] == os.getpid()
    error = await client.get(f"/tap/async/{job}/error")
    body = await error.text()
    assert 'value="ERROR"' in body and "division by zero" in body


async def test_abort_cancels_a_small_query_in_postgresql(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    dsn = settings.dsn
    job = await submit(client, QUERY=SLOW_ONE)

    await until_running(dsn, 1, "query running in PostgreSQL")
    assert (await job_row(dsn, job))["runner_pid"] == os.getpid()
    await client.post(f"/tap/async/{job}/phase", data={"PHASE": "ABORT"})
    assert await (await client.get(f"/tap/async/{job}/phase")).text() == "ABORTED"

    await until_running(dsn, 0, "query cancelled in PostgreSQL")
    after = await submit(client, QUERY="SELECT TOP 1 id FROM demo.stars")
    assert await final(client, after) == "COMPLETED"


async def test_execution_duration_stops_a_small_query(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    job = await submit(client, QUERY=SLOW_ONE, EXECUTIONDURATION="1")
    assert await final(client, job) == "ABORTED"
    row = await job_row(settings.dsn, job)
    assert row["runner_pid"] == os.getpid()
    assert "execution duration of 1 s exceeded" in row["error_message"]
    # Stopped at its 1 s, not by some later sweep (the safety polls run every 5 s).
    ran = (row["end_time"] - row["start_time"]).total_seconds()
    assert ran < 3.0, ran
    dsn = settings.dsn

    await until_running(dsn, 0, "query cancelled in PostgreSQL")


async def test_the_lane_can_be_turned_off(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    assert settings.dsn is not None
    off = TapSettings.for_service(settings, slots=1, inline_rows=0)
    client = await aiohttp_client(create_tap_app(settings, off, demo_rows=100))
    job = await submit(client, QUERY="SELECT TOP 1 id FROM demo.stars")
    assert await final(client, job) == "COMPLETED"
    assert (await job_row(settings.dsn, job))["runner_pid"] != os.getpid()


async def test_a_job_held_back_by_the_owner_cap_gives_its_lane_slot_back(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    assert settings.dsn is not None
    one = replace(settings, max_executing_per_owner=1)
    tap = TapSettings.for_service(one, slots=1, inline_slots=1)
    client = await aiohttp_client(create_tap_app(one, tap, demo_rows=2000))
    # Unbounded, so a runner runs it; the lane's one slot stays free.
    slow = await submit(client, QUERY=SLOW_ONE.replace("TOP 1 ", ""))
    assert (await job_row(settings.dsn, slow))["runner_pid"] != os.getpid()
    # At the executing cap: stored QUEUED (not refused), run once room is made.
    held = await submit(client, QUERY="SELECT TOP 1 id FROM demo.stars")
    assert (await job_row(settings.dsn, held))["phase"] == "QUEUED"
    await client.post(f"/tap/async/{slow}/phase", data={"PHASE": "ABORT"})
    assert await final(client, slow) == "ABORTED"
    assert await final(client, held) == "COMPLETED"
    after = await submit(client, QUERY="SELECT TOP 1 id FROM demo.stars")
    assert await final(client, after) == "COMPLETED"
    assert (await job_row(settings.dsn, after))["runner_pid"] == os.getpid()


async def test_the_lane_survives_its_connections_being_closed_by_the_database(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    first = await submit(client, QUERY="SELECT TOP 2 id FROM demo.stars")
    assert await final(client, first) == "COMPLETED"
    conn = await asyncpg.connect(settings.dsn)
    try:  # as after a database restart: every other session is gone
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    await asyncio.sleep(0.2)
    after = await submit(client, QUERY="SELECT TOP 2 id FROM demo.stars")
    assert await final(client, after) == "COMPLETED"
    assert (await job_row(settings.dsn, after))["runner_pid"] == os.getpid()


async def test_results_of_a_job_archived_elsewhere_are_gone(
    client: Client, settings: Settings
) -> None:
    assert settings.dsn is not None
    job = await submit(client, QUERY="SELECT TOP 2 id FROM demo.stars")
    assert await final(client, job) == "COMPLETED"
    url = f"/tap/async/{job}/results/result"
    assert (await client.get(url)).status == 200
    conn = await asyncpg.connect(settings.dsn)
    try:  # another server process archives it (its trigger announces it)
        await conn.execute(
            "UPDATE uws.job SET phase = 'ARCHIVED', results = '[]' WHERE job_id = $1",
            job,
        )
    finally:
        await conn.close()

    async def gone() -> bool:
        return (await client.get(url)).status == 404

    await eventually(gone, "the archived job's result is gone")

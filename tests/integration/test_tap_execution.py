"""TAP execution limits: abort cancels the query in PostgreSQL, timeouts end it."""

from __future__ import annotations

import pytest
from querywatch import until_running
from testkit import Client
from uwskit import run_seconds

from aiouws.config import Settings
from taprunner.settings import TapSettings

SLOW = "SELECT COUNT(*) AS n FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, sync_timeout=1.0, slots=1)


async def test_abort_cancels_the_query_in_postgresql(
    client: Client, settings: Settings
) -> None:
    resp = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": SLOW, "PHASE": "RUN"},
        allow_redirects=False,
    )
    assert resp.status == 303
    job = resp.headers["Location"].split("/tap/async/", 1)[1]
    assert settings.dsn is not None
    dsn = settings.dsn

    await until_running(dsn, 1, "query running in PostgreSQL")
    await client.post(f"/tap/async/{job}/phase", data={"PHASE": "ABORT"})
    assert await (await client.get(f"/tap/async/{job}/phase")).text() == "ABORTED"

    await until_running(dsn, 0, "query cancelled in PostgreSQL")
    # the runner is free again and answers the next job
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "QUERY": "SELECT TOP 1 id FROM demo.stars",
            "PHASE": "RUN",
        },
    )
    text = await (await client.get(resp.url.path + "?WAIT=10")).text()
    assert "COMPLETED" in text or "EXECUTING" in text


async def test_sync_query_over_time_limit_gets_error_document(client: Client) -> None:
    resp = await client.get("/tap/sync", params={"LANG": "ADQL", "QUERY": SLOW})
    body = await resp.text()
    assert resp.status == 400
    assert 'value="ERROR"' in body and "cancel" in body
    resp = await client.get(
        "/tap/sync", params={"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}
    )
    assert resp.status == 200


async def test_execution_duration_stops_async_query(client: Client) -> None:
    resp = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": SLOW, "EXECUTIONDURATION": "1", "PHASE": "RUN"},
    )
    for _ in range(20):
        text = await (await client.get(resp.url.path + "?WAIT=5")).text()
        if "ABORTED" in text or "ERROR" in text:
            break
    assert "<uws:phase>ABORTED</uws:phase>" in text
    assert "execution duration" in text
    # Stopped at its 1 s, not by some later sweep (the safety polls run every 5 s).
    assert run_seconds(text) < 3.0, run_seconds(text)

"""The TAP kind's prepare hook: parameters are parsed once, before the job is queued.

A bad parameter (here RESPONSEFORMAT) ends the job in ERROR at RUN without it
ever being QUEUED or claimed (its error is still a DALI document); a good one is
parsed once, and the fast lane's test gets that very parse.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any

import asyncpg
import pytest
import testdb
from querywatch import final, submit
from testkit import Client, MakeClient

from aiouws.config import Settings
from aiouws.models import JobParameter
from aiouws.phases import Phase
from aiouws.storage.database import Database
from aiouws.storage.notify import PhaseEvent, PhaseListener
from taprunner.request import TapRequest
from taprunner.settings import TapSettings
from taprunner.web import app as tap_app
from taprunner.web.fastlane import LaneQuery, TapInline


@pytest.fixture
async def events(db_dsn: str) -> AsyncIterator[list[PhaseEvent]]:
    """Every phase change announced while the test runs."""
    seen: list[PhaseEvent] = []
    listener = PhaseListener(lambda: asyncpg.connect(db_dsn))
    listener.subscribe(seen.append)
    await listener.start()
    yield seen
    await listener.stop()


@pytest.fixture
def app_tap(settings: Settings) -> TapSettings:
    return TapSettings.for_service(settings, slots=1)


#: A job's row: its phase, whether it was queued, who claimed it.
job_row = partial(
    testdb.job_row, columns="phase, queued_time, claimed_by, runner_pid, error_message"
)


async def phases_of(events: list[PhaseEvent], job: str) -> list[Phase | None]:
    """The announced phases of ``job``, once its ERROR has been announced."""
    async with asyncio.timeout(10):
        while not any(e.job_id == job and e.phase is Phase.ERROR for e in events):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return [e.phase for e in events if e.job_id == job]


async def test_a_bad_responseformat_ends_in_error_without_being_queued(
    client: Client, settings: Settings, events: list[PhaseEvent]
) -> None:
    assert settings.dsn is not None
    created = await submit(
        client, QUERY="SELECT TOP 1 id FROM demo.stars", RESPONSEFORMAT="fits"
    )
    assert await final(client, created) == "ERROR"
    row = await job_row(settings.dsn, created)
    assert "RESPONSEFORMAT" in row["error_message"]
    assert row["queued_time"] is None
    assert row["claimed_by"] is None and row["runner_pid"] is None
    phases = await phases_of(events, created)
    assert Phase.QUEUED not in phases and Phase.EXECUTING not in phases
    # Its error is a DALI VOTable error document, as a runner would write it.
    error = await client.get(f"/tap/async/{created}/error")
    assert error.headers["Content-Type"].startswith("application/x-votable+xml")
    body = await error.text()
    assert 'name="QUERY_STATUS" value="ERROR"' in body and "RESPONSEFORMAT" in body
    # The same for a PENDING job run later.
    resp = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "QUERY": "SELECT 1", "RESPONSEFORMAT": "fits"},
        allow_redirects=False,
    )
    assert resp.status == 303
    pending = str(resp.headers["Location"]).rsplit("/", 1)[1]
    resp = await client.post(f"/tap/async/{pending}/phase", data={"PHASE": "RUN"})
    assert resp.status in (200, 303)
    assert await final(client, pending) == "ERROR"
    row = await job_row(settings.dsn, pending)
    assert "RESPONSEFORMAT" in row["error_message"]
    assert row["queued_time"] is None and row["claimed_by"] is None
    phases = await phases_of(events, pending)
    assert Phase.QUEUED not in phases and Phase.EXECUTING not in phases


async def test_the_lane_gets_the_request_the_hook_parsed(
    settings: Settings, aiohttp_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[TapRequest] = []
    tested: list[object] = []
    real_parse = tap_app.tap_request
    real_accepts = TapInline.accepts

    def counting_parse(pairs: Any, tap: TapSettings) -> TapRequest:
        parsed.append(real_parse(pairs, tap))
        return parsed[-1]

    def recording_accepts(self: TapInline, request: object) -> bool:
        tested.append(request)
        return real_accepts(self, request)

    monkeypatch.setattr(tap_app, "tap_request", counting_parse)
    monkeypatch.setattr(TapInline, "accepts", recording_accepts)
    client = await aiohttp_client(
        tap_app.create_tap_app(
            settings, TapSettings.for_service(settings, slots=1), demo_rows=50
        )
    )
    assert settings.dsn is not None
    job = await submit(client, QUERY="SELECT TOP 3 id FROM demo.stars")
    assert await final(client, job) == "COMPLETED"
    assert (await job_row(settings.dsn, job))["runner_pid"] == os.getpid()
    assert len(parsed) == 1
    assert len(tested) == 1
    assert isinstance(tested[0], LaneQuery) and tested[0].request is parsed[0]


async def test_the_hook_sees_the_kinds_defaults_and_refuses_bad_values() -> None:
    kind = tap_app.tap_kind(TapSettings(), Database("postgresql://localhost/x"))
    assert kind.prepare is not None
    given: Sequence[JobParameter] = [JobParameter(name="query", value="SELECT 1")]
    problems, prepared = await kind.check(given)
    assert problems == []
    assert isinstance(prepared, LaneQuery)
    assert isinstance(prepared.request, TapRequest)
    assert prepared.request.query == "SELECT 1"
    bad = [*given, JobParameter(name="responseformat", value="fits")]
    problems, prepared = await kind.check(bad)
    assert prepared is None and "RESPONSEFORMAT" in problems[0]

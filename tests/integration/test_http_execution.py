"""Job execution through the REST API: real supervisor, real runner processes."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from testkit import Client, MakeClient
from uwskit import run_seconds

from aiouws.config import Settings
from aiouws.demo import DEMO_KIND
from aiouws.http.app import create_app
from aiouws.kinds import JobKind
from aiouws.timefmt import parse_iso

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "jobkinds")])}
SCRIPTED = JobKind(name="scripted", entry_point="scripted:run", slots=1, runner_env=ENV)
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings, [DEMO_KIND, SCRIPTED])


async def submit(client: Client, kind: str, **params: str) -> str:
    resp = await client.post(f"/jobs/{kind}", data=params, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return resp.headers["Location"].rsplit("/", 1)[1]


async def phase(client: Client, kind: str, job_id: str) -> str:
    return await (await client.get(f"/jobs/{kind}/{job_id}/phase")).text()


async def wait_final(client: Client, kind: str, job_id: str) -> str:
    for _ in range(40):
        resp = await client.get(f"/jobs/{kind}/{job_id}?WAIT=5")
        text = await resp.text()
        for final in ("COMPLETED", "ERROR", "ABORTED"):
            if f"<uws:phase>{final}</uws:phase>" in text:
                return final
    raise AssertionError(f"job {job_id} never finished")


async def test_run_at_creation_is_handed_to_a_runner_before_answer(
    client: Client, assert_valid: Any
) -> None:
    job_id = await submit(client, "demo", seconds="0.5", message="hi", PHASE="RUN")
    # With a free slot the job is already EXECUTING (or done) when the POST answers.
    assert await phase(client, "demo", job_id) in ("EXECUTING", "COMPLETED")
    assert await wait_final(client, "demo", job_id) == "COMPLETED"
    tree = assert_valid(await (await client.get(f"/jobs/demo/{job_id}")).read())
    result = tree.find(f"{UWS}results/{UWS}result")
    assert result is not None
    href = result.get("{http://www.w3.org/1999/xlink}href")
    body = await (
        await client.get(href.split("://", 1)[1].partition("/")[2].join(["/", ""]))
    ).text()
    assert "hi" in body
    assert tree.findtext(f"{UWS}startTime") and tree.findtext(f"{UWS}endTime")


async def test_abort_executing_job_via_http(client: Client) -> None:
    job_id = await submit(client, "scripted", action="sleep", seconds="60", PHASE="RUN")
    assert await phase(client, "scripted", job_id) == "EXECUTING"
    resp = await client.post(
        f"/jobs/scripted/{job_id}/phase", data={"PHASE": "ABORT"}, allow_redirects=False
    )
    assert resp.status == 303
    assert await phase(client, "scripted", job_id) == "ABORTED"
    # the slot is free again: the next job runs
    second = await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    assert await wait_final(client, "scripted", second) == "COMPLETED"


async def test_delete_running_job_aborts_and_removes(
    client: Client, settings: Settings
) -> None:
    job_id = await submit(
        client, "scripted", action="ignore_cancel", seconds="60", PHASE="RUN"
    )
    assert await phase(client, "scripted", job_id) == "EXECUTING"
    resp = await client.delete(f"/jobs/scripted/{job_id}", allow_redirects=False)
    assert resp.status == 303
    assert (await client.get(f"/jobs/scripted/{job_id}")).status == 404
    assert not (settings.resolved_jobs_dir / job_id).exists()
    second = await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    assert await wait_final(client, "scripted", second) == "COMPLETED"


async def test_exception_gives_error_with_detail(client: Client) -> None:
    job_id = await submit(
        client, "scripted", action="fail", message="kaputt", PHASE="RUN"
    )
    assert await wait_final(client, "scripted", job_id) == "ERROR"
    text = await (await client.get(f"/jobs/scripted/{job_id}")).text()
    assert 'hasDetail="true"' in text and "kaputt" in text
    detail = await (await client.get(f"/jobs/scripted/{job_id}/error")).text()
    assert "kaputt" in detail and "Traceback" not in detail


async def test_queue_order_with_one_slot(client: Client) -> None:
    first = await submit(client, "scripted", action="sleep", seconds="60", PHASE="RUN")
    queued = [
        await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
        for _ in range(3)
    ]
    assert [await phase(client, "scripted", j) for j in queued] == ["QUEUED"] * 3
    quote = await (await client.get(f"/jobs/scripted/{queued[0]}/quote")).text()
    assert quote == "" or quote.endswith("Z")
    await client.post(f"/jobs/scripted/{first}/phase", data={"PHASE": "ABORT"})
    for job_id in queued:
        assert await wait_final(client, "scripted", job_id) == "COMPLETED"


async def test_quote_of_queued_job_is_the_same_in_every_read(
    client: Client,
) -> None:
    """/quote and the job document's <uws:quote> agree, read after read."""
    history = await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    assert await wait_final(client, "scripted", history) == "COMPLETED"
    first = await submit(client, "scripted", action="sleep", seconds="60", PHASE="RUN")
    waiting = await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    assert await phase(client, "scripted", waiting) == "QUEUED"
    # The first estimate (1.5 runs of the history's job after queueing) may
    # still lie ahead: once it passes the quote steps on (a minute) and stays.
    raw = await (await client.get(f"/jobs/scripted/{waiting}/quote")).text()
    left = (parse_iso(raw) - datetime.now(UTC)).total_seconds()
    if left < 30:
        await asyncio.sleep(max(left, 0) + 0.1)
    seen = set()
    for _ in range(3):
        seen.add(await (await client.get(f"/jobs/scripted/{waiting}/quote")).text())
        document = await (await client.get(f"/jobs/scripted/{waiting}")).text()
        seen.add(document.split("<uws:quote>")[1].split("<")[0])
        await asyncio.sleep(0.3)
    assert len(seen) == 1 and seen.pop().endswith("Z"), seen
    await client.post(f"/jobs/scripted/{first}/phase", data={"PHASE": "ABORT"})
    assert await wait_final(client, "scripted", waiting) == "COMPLETED"


async def test_abort_queued_job_is_immediate(client: Client) -> None:
    blocker = await submit(
        client, "scripted", action="sleep", seconds="60", PHASE="RUN"
    )
    waiting = await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    assert await phase(client, "scripted", waiting) == "QUEUED"
    await client.post(f"/jobs/scripted/{waiting}/phase", data={"PHASE": "ABORT"})
    assert await phase(client, "scripted", waiting) == "ABORTED"
    await client.post(f"/jobs/scripted/{blocker}/phase", data={"PHASE": "ABORT"})


async def test_execution_duration_ends_job_aborted(client: Client) -> None:
    job_id = await submit(
        client,
        "scripted",
        action="sleep",
        seconds="60",
        EXECUTIONDURATION="1",
        PHASE="RUN",
    )
    assert await wait_final(client, "scripted", job_id) == "ABORTED"
    text = await (await client.get(f"/jobs/scripted/{job_id}")).text()
    assert "execution duration" in text
    # Stopped at its 1 s, not by some later sweep (the safety polls run every 5 s).
    assert run_seconds(text) < 3.0, run_seconds(text)


async def test_owner_queue_cap_gives_429(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    capped = replace(settings, max_queued_per_owner=2)
    client = await aiohttp_client(create_app(capped, [SCRIPTED]))
    blocker = await submit(
        client, "scripted", action="sleep", seconds="60", PHASE="RUN"
    )
    for _ in range(2):
        await submit(client, "scripted", action="sleep", seconds="0", PHASE="RUN")
    resp = await client.post(
        "/jobs/scripted", data={"PHASE": "RUN"}, allow_redirects=False
    )
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    assert "queued" in await resp.text()
    await client.post(f"/jobs/scripted/{blocker}/phase", data={"PHASE": "ABORT"})


async def test_many_concurrent_jobs_all_complete(client: Client) -> None:
    ids = await asyncio.gather(
        *(submit(client, "demo", seconds="0", PHASE="RUN") for _ in range(30))
    )
    finals = await asyncio.gather(*(wait_final(client, "demo", j) for j in ids))
    assert finals == ["COMPLETED"] * 30


async def test_owner_executing_cap_and_run_of_pending_job(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    capped = replace(settings, max_executing_per_owner=1)
    client = await aiohttp_client(create_app(capped, [SCRIPTED]))
    pending = await create_pending(client)
    blocker = await submit(
        client, "scripted", action="sleep", seconds="60", PHASE="RUN"
    )
    assert await phase(client, "scripted", blocker) == "EXECUTING"
    # The executing cap refuses nothing: it holds the job QUEUED at claim time.
    resp = await client.post(
        f"/jobs/scripted/{pending}/phase", data={"PHASE": "RUN"}, allow_redirects=False
    )
    assert resp.status == 303
    await asyncio.sleep(0.5)
    assert await phase(client, "scripted", pending) == "QUEUED"
    await client.post(f"/jobs/scripted/{blocker}/phase", data={"PHASE": "ABORT"})
    started = time.monotonic()
    while await phase(client, "scripted", pending) == "QUEUED":
        assert time.monotonic() - started < 5.0, "not claimed once room was made"
        await asyncio.sleep(0.02)


async def create_pending(client: Client) -> str:
    resp = await client.post(
        "/jobs/scripted", data={"action": "sleep"}, allow_redirects=False
    )
    assert resp.status == 303
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_job_output_with_nul_characters_still_ends_in_error(
    client: Client, assert_valid: Any
) -> None:
    job_id = await submit(client, "scripted", action="fail_nul", PHASE="RUN")
    assert await wait_final(client, "scripted", job_id) == "ERROR"
    tree = assert_valid(await (await client.get(f"/jobs/scripted/{job_id}")).read())
    assert "\ufffd" in tree.findtext(f"{UWS}errorSummary/{UWS}message")


async def test_archive_deletes_results_but_keeps_the_job(
    settings: Settings, aiohttp_client: MakeClient
) -> None:
    # Job lists are per owner: an anonymous request lists none (test_http_auth).
    client = await aiohttp_client(
        create_app(replace(settings, auth="header"), [DEMO_KIND]),
        headers={"X-Remote-User": "al"},
    )
    job_id = await submit(client, "demo", seconds="0", PHASE="RUN")
    assert await wait_final(client, "demo", job_id) == "COMPLETED"
    assert (await client.get(f"/jobs/demo/{job_id}/results/result")).status == 200
    resp = await client.post(
        f"/jobs/demo/{job_id}/phase", data={"PHASE": "ARCHIVE"}, allow_redirects=False
    )
    assert resp.status == 303
    assert await phase(client, "demo", job_id) == "ARCHIVED"
    assert (await client.get(f"/jobs/demo/{job_id}/results/result")).status == 404
    assert job_id not in await (await client.get("/jobs/demo")).text()
    assert job_id in await (await client.get("/jobs/demo?PHASE=ARCHIVED")).text()


async def test_sooner_destruction_time_is_honoured_promptly(client: Client) -> None:
    from datetime import UTC, datetime, timedelta

    job_id = await submit(client, "demo", seconds="0", PHASE="RUN")
    assert await wait_final(client, "demo", job_id) == "COMPLETED"
    soon = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await client.post(f"/jobs/demo/{job_id}/destruction", data={"DESTRUCTION": soon})
    for _ in range(100):  # well under the timer's 60 s fallback sleep
        if (await client.get(f"/jobs/demo/{job_id}")).status == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("job not destroyed")

"""Per-owner caps hold exactly under concurrency: hundreds of simultaneous
creations (or RUNs of PENDING jobs) leave exactly the cap queued, the rest 429."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import asyncpg
from testkit import Client, MakeClient

from aiouws.config import Settings
from aiouws.http.app import create_app
from aiouws.kinds import JobKind

REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests" / "jobkinds")])}
#: One runner slot: once the blocker runs, every other job stays QUEUED.
SCRIPTED = JobKind(name="scripted", entry_point="scripted:run", slots=1, runner_env=ENV)
CAP = 100
CONCURRENT = 500


async def _capped_client(settings: Settings, aiohttp_client: MakeClient) -> Client:
    capped = replace(settings, max_queued_per_owner=CAP, max_executing_per_owner=CAP)
    return await aiohttp_client(create_app(capped, [SCRIPTED]))


async def _post(client: Client, path: str, data: dict[str, str]) -> int:
    resp = await client.post(path, data=data, allow_redirects=False)
    body = await resp.text()
    assert resp.status in (303, 429), (resp.status, body)
    if resp.status == 429:
        assert "queued" in body and f"limit is {CAP}" in body, body
    return resp.status


async def _phases(db_dsn: str) -> Counter[str]:
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(
            "SELECT phase::text AS p, count(*) FROM uws.job GROUP BY 1"
        )
    finally:
        await conn.close()
    return Counter({r["p"]: r["count"] for r in rows})


async def _start_blocker(client: Client) -> str:
    resp = await client.post(
        "/jobs/scripted",
        data={"action": "sleep", "seconds": "60", "PHASE": "RUN"},
        allow_redirects=False,
    )
    assert resp.status == 303
    return resp.headers["Location"].rsplit("/", 1)[1]


async def test_concurrent_creations_queue_exactly_the_cap(
    settings: Settings, aiohttp_client: MakeClient, db_dsn: str
) -> None:
    client = await _capped_client(settings, aiohttp_client)
    blocker = await _start_blocker(client)
    statuses = Counter(
        await asyncio.gather(
            *(
                _post(client, "/jobs/scripted", {"action": "sleep", "PHASE": "RUN"})
                for _ in range(CONCURRENT)
            )
        )
    )
    phases = await _phases(db_dsn)
    # Before the owner's lock: 121-137 queued.
    assert phases["QUEUED"] == CAP, phases
    assert statuses == {303: CAP, 429: CONCURRENT - CAP}, statuses
    await client.post(f"/jobs/scripted/{blocker}/phase", data={"PHASE": "ABORT"})


async def test_concurrent_runs_of_pending_jobs_queue_exactly_the_cap(
    settings: Settings, aiohttp_client: MakeClient, db_dsn: str
) -> None:
    client = await _capped_client(settings, aiohttp_client)
    blocker = await _start_blocker(client)
    pending = []
    for _ in range(CAP + 50):
        resp = await client.post(
            "/jobs/scripted", data={"action": "sleep"}, allow_redirects=False
        )
        assert resp.status == 303
        pending.append(resp.headers["Location"].rsplit("/", 1)[1])
    statuses = Counter(
        await asyncio.gather(
            *(
                _post(client, f"/jobs/scripted/{job_id}/phase", {"PHASE": "RUN"})
                for job_id in pending
            )
        )
    )
    phases = await _phases(db_dsn)
    assert phases["QUEUED"] == CAP and phases["PENDING"] == 50, phases
    assert statuses == {303: CAP, 429: 50}, statuses
    await client.post(f"/jobs/scripted/{blocker}/phase", data={"PHASE": "ABORT"})

"""Submitting TAP jobs and watching their queries in PostgreSQL (execution tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

__all__ = [
    "activity",
    "eventually",
    "final",
    "running_queries",
    "submit",
    "until_running",
]


async def submit(client: TestClient[Any, Any], **params: str) -> str:
    """Create an async TAP job with PHASE=RUN and ``params``; its id."""
    resp = await client.post(
        "/tap/async",
        data={"LANG": "ADQL", "PHASE": "RUN", **params},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    return str(resp.headers["Location"]).rsplit("/", 1)[1]


async def final(client: TestClient[Any, Any], job: str) -> str:
    """The job's phase once it is COMPLETED, ERROR or ABORTED (WAITs in between)."""
    for _ in range(40):
        phase = await (await client.get(f"/tap/async/{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        await client.get(f"/tap/async/{job}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job} never ended")


async def running_queries(dsn: str) -> int:
    """Active queries that join ``demo.stars AS a`` (the tests' slow query)."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                " AND query LIKE '%demo.stars AS a%' AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


async def activity(dsn: str) -> str:
    """What every backend of the cluster is doing (for failure messages)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT datname, pid, application_name, backend_type, state,"
            " now() - query_start AS running, left(query, 70) AS query"
            " FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
            " AND backend_type IN ('client backend', 'parallel worker')"
        )
    finally:
        await conn.close()
    return "\n".join(str(dict(row)) for row in rows)


async def eventually(
    check: Callable[[], Awaitable[bool]],
    what: str,
    explain: Callable[[], Awaitable[str]] | None = None,
) -> None:
    """Poll ``check`` (bounded: about 10 s) until it holds; on failure the
    message ends with what ``explain`` says."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.05)
    detail = "" if explain is None else "\n" + await explain()
    raise AssertionError(f"never: {what}{detail}")


async def until_running(dsn: str, count: int, what: str) -> None:
    """Wait (about 10 s at most) until ``count`` of the slow queries run; on
    failure say ``what`` was awaited and what every backend is doing."""

    async def holds() -> bool:
        return await running_queries(dsn) == count

    await eventually(holds, what, lambda: activity(dsn))

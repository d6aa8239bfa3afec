"""Crash recovery and graceful shutdown of the real server process."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from liveserver import LiveServer, create_database, drop_database, start_server

ENV = {"AIOUWS_LEASE_SECONDS": "2", "AIOUWS_SLOTS_PER_KIND": "1", "AIOUWS_GRACE": "1"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def submit(server: LiveServer, **params: str) -> str:
    data = urllib.parse.urlencode({**params, "PHASE": "RUN"}).encode()
    try:
        _opener.open(server.url + "/jobs/demo", data=data, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303, exc.read()
        return exc.headers["Location"].rsplit("/", 1)[1]
    raise AssertionError("no redirect")


def phase(server: LiveServer, job_id: str) -> str:
    with urllib.request.urlopen(f"{server.url}/jobs/demo/{job_id}/phase") as resp:
        return resp.read().decode()


def wait_phase(server: LiveServer, job_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = phase(server, job_id)
        if current in wanted:
            return current
        url = f"{server.url}/jobs/demo/{job_id}?WAIT=5&PHASE={current}"
        urllib.request.urlopen(url, timeout=30).read()
    raise AssertionError(f"job {job_id} stayed {phase(server, job_id)}\n{server.log()}")


async def job_row(dsn: str, job_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT phase::text, error_message, start_time, results::text"
            " FROM uws.job WHERE job_id = $1",
            job_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


@pytest.fixture
def crash_dsn(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    dsn = create_database(pg_admin_dsn)
    yield dsn
    drop_database(pg_admin_dsn, dsn)


def test_kill_9_and_restart_loses_no_job(crash_dsn: str, tmp_path: Path) -> None:
    first = start_server(crash_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        running = submit(first, seconds="60")
        assert phase(first, running) == "EXECUTING"
        queued = [submit(first, seconds="0", message=f"m{i}") for i in range(3)]
        assert [phase(first, j) for j in queued] == ["QUEUED"] * 3
    finally:
        first.kill()
    second = start_server(crash_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        assert wait_phase(second, running, {"ERROR", "COMPLETED", "ABORTED"}) == "ERROR"
        row = asyncio.run(job_row(crash_dsn, running))
        assert "server stopped" in row["error_message"]
        for job_id in queued:
            assert wait_phase(second, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
            row = asyncio.run(job_row(crash_dsn, job_id))
            assert row["results"].count('"id"') == 1
    finally:
        second.stop()


def test_sigterm_aborts_running_jobs_and_exits_cleanly(
    crash_dsn: str, tmp_path: Path
) -> None:
    server = start_server(crash_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        running = submit(server, seconds="60")
        assert phase(server, running) == "EXECUTING"
    finally:
        code = server.stop()
    assert code == 0, server.log()
    row = asyncio.run(job_row(crash_dsn, running))
    assert row["phase"] == "ABORTED"
    assert "shut down" in row["error_message"]

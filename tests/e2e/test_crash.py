"""Crash recovery and graceful shutdown of the real server process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from livejobs import job_row, phase, submit, wait_phase
from liveserver import start_server

ENV = {"AIOUWS_LEASE_SECONDS": "2", "AIOUWS_SLOTS_PER_KIND": "1", "AIOUWS_GRACE": "1"}


def test_kill_9_and_restart_loses_no_job(fresh_dsn: str, tmp_path: Path) -> None:
    first = start_server(fresh_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        running = submit(first, seconds="60")
        assert phase(first, running) == "EXECUTING"
        queued = [submit(first, seconds="0", message=f"m{i}") for i in range(3)]
        assert [phase(first, j) for j in queued] == ["QUEUED"] * 3
    finally:
        first.kill()
    second = start_server(fresh_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        assert wait_phase(second, running, {"ERROR", "COMPLETED", "ABORTED"}) == "ERROR"
        row = asyncio.run(job_row(fresh_dsn, running))
        assert "server stopped" in row["error_message"]
        for job_id in queued:
            assert wait_phase(second, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
            row = asyncio.run(job_row(fresh_dsn, job_id))
            assert row["results"].count('"id"') == 1
    finally:
        second.stop()


def test_sigterm_aborts_running_jobs_and_exits_cleanly(
    fresh_dsn: str, tmp_path: Path
) -> None:
    server = start_server(fresh_dsn, tmp_path, demo_rows=0, env=ENV)
    try:
        running = submit(server, seconds="60")
        assert phase(server, running) == "EXECUTING"
    finally:
        code = server.stop()
    assert code == 0, server.log()
    row = asyncio.run(job_row(fresh_dsn, running))
    assert row["phase"] == "ABORTED"
    assert "shut down" in row["error_message"]

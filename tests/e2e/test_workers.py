"""``aiouws serve --workers 2``: two server processes on one port, one parent."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import asyncpg
from livejobs import job_row, phase, submit, wait_phase
from liveserver import LiveServer, start_server

ENV = {"AIOUWS_LEASE_SECONDS": "2", "AIOUWS_GRACE": "1"}


def worker_pids(server: LiveServer) -> set[int]:
    """The parent's children that are workers (``serve --worker``)."""
    pids = set()
    for task in os.listdir(f"/proc/{server.process.pid}/task"):
        children = Path(f"/proc/{server.process.pid}/task/{task}/children")
        for pid in map(int, children.read_text().split()):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"--worker" in argv:
                pids.add(pid)
    return pids


def listening(server: LiveServer) -> set[int]:
    """The workers that have a listening socket on the server's port."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == server.port and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    found = set()
    for pid in worker_pids(server):
        fds = Path(f"/proc/{pid}/fd")
        try:
            links = {os.readlink(fd) for fd in fds.iterdir()}
        except OSError:
            continue
        if links & inodes:
            found.add(pid)
    return found


def wait_for(condition: object, what: str, server: LiveServer) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{server.log()}")
        time.sleep(0.1)


def start_workers(dsn: str, data_dir: Path) -> LiveServer:
    """``aiouws serve --workers 2``, once both workers listen."""
    server = start_server(
        dsn, data_dir, demo_rows=0, env=ENV, extra_args=("--workers", "2")
    )
    try:
        wait_for(lambda: len(listening(server)) == 2, "two listening workers", server)
    except BaseException:
        server.kill()
        raise
    return server


async def claimers(dsn: str, job_ids: list[str]) -> set[str]:
    """The pids of the server processes that claimed these jobs."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT claimed_by FROM uws.job WHERE job_id = ANY($1::text[])", job_ids
        )
    finally:
        await conn.close()
    return {str(r["claimed_by"]).split(":")[1] for r in rows}


def test_two_workers_share_the_port_and_replace_a_dead_one(
    fresh_dsn: str, tmp_path: Path
) -> None:
    server = start_workers(fresh_dsn, tmp_path)
    try:
        first = worker_pids(server)
        # One connection per request: the kernel spreads them over both workers.
        jobs = [submit(server, seconds="0", message=f"m{i}") for i in range(24)]
        for job_id in jobs:
            assert wait_phase(server, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
        assert {str(p) for p in first} == asyncio.run(claimers(fresh_dsn, jobs))

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(listening(server)) == 2 and victim not in worker_pids(server),
            "a replacement worker",
            server,
        )
        assert "worker exited" in server.log()
        after = [submit(server, seconds="0") for _ in range(6)]
        for job_id in after:
            assert wait_phase(server, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
        running = submit(server, seconds="60")
        assert phase(server, running) == "EXECUTING"
        survivors = worker_pids(server)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    assert not any(Path(f"/proc/{pid}").exists() for pid in survivors)
    assert asyncio.run(job_row(fresh_dsn, running))["phase"] == "ABORTED"


def test_workers_stop_when_the_parent_is_killed(fresh_dsn: str, tmp_path: Path) -> None:
    server = start_workers(fresh_dsn, tmp_path)
    try:
        workers = worker_pids(server)
        server.process.kill()  # the parent only: the workers see their pipe close
        server.process.wait(10)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, (
                f"workers outlived the parent\n{server.log()}"
            )
            time.sleep(0.1)
    finally:
        server.kill()

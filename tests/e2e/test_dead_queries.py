"""A dead runner's or server's query ends in PostgreSQL within seconds.

Each test runs a TAP query that scans 5,000³ rows of the demo table without
returning one (minutes of work, parallel workers included) and finds its
backends in ``pg_stat_activity`` by a constant of the query text. Before the
fix, such a backend ran on until the job's execution duration was over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import asyncpg
import testdb
from liveserver import NO_REDIRECT, LiveServer, start_server

#: The lease of the test servers: short, so that a second server recovers soon.
ENV = {"AIOUWS_LEASE_SECONDS": "2", "AIOUWS_SLOTS_PER_KIND": "1"}
#: A constant that only the slow query's text holds.
MARK = "-12345.5"
SLOW_QUERY = (
    "SELECT a.id FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"
    f" WHERE a.ra + b.ra + c.ra < {MARK}"
)
#: Seconds within which a dead client's backend must be gone.
BOUND = 5.0


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _backends(dsn: str, leaders: bool) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE $1"
            " AND pid <> pg_backend_pid()"
            " AND (NOT $2 OR (backend_type = $3 AND state = 'active'))",
            f"%{MARK}%",
            leaders,
            "client backend",
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def backends(dsn: str, *, leaders: bool = False) -> list[int]:
    """The backends of the slow query (``leaders``: only those running it, not
    parallel workers)."""
    return asyncio.run(_backends(dsn, leaders))


def wait_until(predicate: object, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - start < timeout, what
        time.sleep(0.1)
    return time.monotonic() - start


def submit_slow(server: LiveServer) -> str:
    """A TAP async job running the slow query in a runner (MAXREC above the
    inline lane's rows, no bound: not the fast lane)."""
    form = {
        "LANG": "ADQL",
        "QUERY": SLOW_QUERY,
        "MAXREC": "100000",
        "PHASE": "RUN",
    }
    data = urllib.parse.urlencode(form).encode()
    try:
        NO_REDIRECT.open(server.tap_url + "/async", data=data, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303, exc.read()
        return str(exc.headers["Location"]).rsplit("/", 1)[1]
    raise AssertionError("no redirect")


def job(dsn: str, job_id: str) -> asyncpg.Record:
    return run(
        testdb.job_row(
            dsn,
            job_id,
            columns="phase::text, error_message, runner_pid, backend_pids",
        )
    )  # type: ignore[return-value]


def running_query(dsn: str, job_id: str) -> asyncpg.Record:
    """The job's row once its query runs and its backend is recorded."""

    def recorded() -> bool:
        running = backends(dsn, leaders=True)
        return bool(running) and set(running) <= set(
            job(dsn, job_id)["backend_pids"] or ()
        )

    try:
        wait_until(recorded, 60, "the slow query did not start or was not recorded")
    except AssertionError:
        print(job(dsn, job_id), backends(dsn, leaders=True))
        raise
    row = job(dsn, job_id)
    assert row["phase"] == "EXECUTING"
    return row


def test_a_killed_runners_query_ends(fresh_dsn: str, tmp_path: Path) -> None:
    server = start_server(fresh_dsn, tmp_path, env=ENV)
    try:
        job_id = submit_slow(server)
        row = running_query(fresh_dsn, job_id)
        os.kill(row["runner_pid"], signal.SIGKILL)
        took = wait_until(
            lambda: not backends(fresh_dsn), BOUND, "the dead runner's query runs on"
        )
        print(f"dead runner's backend gone after {took:.1f} s")
        wait_until(lambda: job(fresh_dsn, job_id)["phase"] == "ERROR", 10, "no ERROR")
        assert "runner died" in job(fresh_dsn, job_id)["error_message"]
    finally:
        server.stop()


def test_a_dead_servers_query_ends_when_its_lease_is_recovered(
    fresh_dsn: str, tmp_path: Path
) -> None:
    """A host that vanished: its server is gone and its runner frozen (SIGSTOP:
    no socket closes, as when a machine loses power). A second server's lease
    recovery ends the job and terminates its recorded backend."""
    first = start_server(fresh_dsn, tmp_path, env=ENV)
    runner = 0
    try:
        job_id = submit_slow(first)
        row = running_query(fresh_dsn, job_id)
        runner = row["runner_pid"]
        os.kill(runner, signal.SIGSTOP)
        first.kill()
        time.sleep(1.0)
        assert backends(fresh_dsn, leaders=True), (
            "the frozen runner's query stopped by itself\n" + first.log()[-5000:]
        )
        second = start_server(fresh_dsn, tmp_path, env=ENV, demo_rows=0)
        try:
            wait_until(
                lambda: job(fresh_dsn, job_id)["phase"] == "ERROR",
                30,
                "lease recovery did not end the job",
            )
            recovered = time.monotonic()
            took = wait_until(
                lambda: not backends(fresh_dsn),
                BOUND,
                "the dead server's query runs on",
            )
            print(f"dead server's backend gone {took:.1f} s after recovery")
            assert time.monotonic() - recovered < BOUND
            assert "server stopped" in job(fresh_dsn, job_id)["error_message"]
        finally:
            second.stop()
    finally:
        if runner:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(runner, sig)
                except ProcessLookupError:
                    pass


def test_a_killed_servers_sync_query_ends(fresh_dsn: str, tmp_path: Path) -> None:
    """A sync query's backend belongs to no job: it ends because every session
    checks for its vanished client (client_connection_check_interval)."""
    server = start_server(fresh_dsn, tmp_path, env=ENV)
    query = urllib.parse.urlencode(
        {"LANG": "ADQL", "QUERY": SLOW_QUERY, "MAXREC": "100000"}
    )

    def ask() -> None:
        try:
            urllib.request.urlopen(f"{server.tap_url}/sync?{query}", timeout=120)
        except OSError:
            pass  # the server is killed under it

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    try:
        wait_until(lambda: backends(fresh_dsn), 60, "the sync query did not start")
    finally:
        server.kill()
    took = wait_until(
        lambda: not backends(fresh_dsn), BOUND, "the dead server's sync query runs on"
    )
    print(f"dead server's sync backend gone after {took:.1f} s")

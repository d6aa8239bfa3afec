"""Two server processes ("hosts") on one database: the global cap holds under a
burst, an ABORT missed while a host's listener was cut is reconciled, and a
host killed while it runs jobs has them ended, and their queries terminated,
by the other host.

Each host has a data directory of its own; the tests read phases and rows,
never result files (the shared results store is another issue's part).
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
from livejobs import phase, submit
from liveserver import NO_REDIRECT, LiveServer, start_server
from test_dead_queries import backends, job, running_query, submit_slow, wait_until

#: Short leases, so that the surviving host recovers a dead one's jobs soon.
ENV = {"AIOUWS_LEASE_SECONDS": "2", "AIOUWS_SLOTS_PER_KIND": "2"}
#: The global cap of the burst test: below 2 hosts x 2 slots, so it binds.
CAP = 3


class Watcher:
    """Counts the EXECUTING jobs of a kind as often as it can, in a thread."""

    def __init__(self, dsn: str, kind: str) -> None:
        self.dsn, self.kind = dsn, kind
        self.counts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._watch()))

    async def _watch(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                self.counts.append(
                    await conn.fetchval(
                        "SELECT count(*) FROM uws.job"
                        " WHERE phase = 'EXECUTING' AND kind = $1",
                        self.kind,
                    )
                )
        finally:
            await conn.close()

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _two_hosts(dsn: str, tmp_path: Path, env: dict[str, str]) -> list[LiveServer]:
    first = start_server(dsn, tmp_path / "a", env=env, demo_rows=2000)
    try:
        return [first, start_server(dsn, tmp_path / "b", env=env, demo_rows=0)]
    except BaseException:
        first.stop()
        raise


def _rows(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_the_global_cap_holds_with_two_hosts_under_a_burst(
    fresh_dsn: str, tmp_path: Path
) -> None:
    env = {**ENV, "AIOUWS_CLUSTER_SLOTS_PER_KIND": str(CAP)}
    hosts = _two_hosts(fresh_dsn, tmp_path, env)
    try:
        ids: list[str] = []
        with Watcher(fresh_dsn, "demo") as watcher:

            def burst(host: LiveServer) -> None:
                for i in range(12):
                    ids.append(submit(host, seconds="0.3", message=f"m{i}"))

            threads = [threading.Thread(target=burst, args=(h,)) for h in hosts]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            wait_until(
                lambda: all(phase(hosts[0], j) == "COMPLETED" for j in ids),
                60,
                "the burst did not complete",
            )
        assert len(ids) == 24 and len(watcher.counts) > 100, len(watcher.counts)
        assert max(watcher.counts) == CAP, watcher.counts  # reached, never passed
        rows = _rows(
            fresh_dsn,
            "SELECT DISTINCT split_part(claimed_by, ':', 2) AS pid FROM uws.job",
        )
        assert len(rows) == 2  # both hosts ran jobs
    finally:
        for host in hosts:
            host.stop()


def _listener_backend(dsn: str, server_pid: int) -> int:
    rows = _rows(
        dsn,
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
        f"aiouws listener {server_pid}",
    )
    assert len(rows) == 1, rows
    return int(rows[0]["pid"])


def test_an_abort_missed_while_the_listener_was_cut_is_reconciled(
    fresh_dsn: str, pg_admin_dsn: str, tmp_path: Path
) -> None:
    hosts = _two_hosts(fresh_dsn, tmp_path, ENV)
    try:
        job_id = submit_slow(hosts[1])
        running_query(fresh_dsn, job_id)
        claimed_by = job_row_claimant(fresh_dsn, job_id)
        listener = _listener_backend(fresh_dsn, claimed_by)

        database = _rows(fresh_dsn, "SELECT current_database() AS d")[0]["d"]
        gate = asyncio.new_event_loop()
        admin = gate.run_until_complete(asyncpg.connect(pg_admin_dsn))
        try:
            # The executing host's listener is cut and cannot come back (no new
            # sessions) while the other host takes the ABORT.
            gate.run_until_complete(
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            )
            assert gate.run_until_complete(
                admin.fetchval("SELECT pg_terminate_backend($1, 5000)", listener)
            )
            other = next(h for h in hosts if h.process.pid != claimed_by)
            url = f"{other.tap_url}/async/{job_id}/phase"
            data = urllib.parse.urlencode({"PHASE": "ABORT"}).encode()
            try:
                NO_REDIRECT.open(url, data=data, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 303, exc.read()
            time.sleep(1.0)
            assert backends(pg_admin_dsn, leaders=True), "stopped with no listener?"
        finally:
            gate.run_until_complete(
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            )
            gate.run_until_complete(admin.close())
            gate.close()
        took = wait_until(
            lambda: not backends(fresh_dsn, leaders=True),
            5.0,
            "the aborted job's query runs on",
        )
        print(f"missed ABORT reconciled, query gone {took:.2f} s after reconnecting")
        assert took < 3.0  # the listener retries within 1.6 s, then one read
        new_listener = _listener_backend(fresh_dsn, claimed_by)
        assert new_listener != listener
        logs = "".join(h.log() for h in hosts)
        assert "elsewhere (reconciled)" in logs, logs
    finally:
        for host in hosts:
            host.stop()


def job_row_claimant(dsn: str, job_id: str) -> int:
    """The server process id of the host that claimed the job."""
    rows = _rows(dsn, "SELECT claimed_by FROM uws.job WHERE job_id = $1", job_id)
    return int(rows[0]["claimed_by"].split(":")[1])


def test_a_killed_host_s_jobs_end_in_error_and_their_queries_go(
    fresh_dsn: str, tmp_path: Path
) -> None:
    """Host A runs two slow queries, then vanishes (its runners frozen: no
    socket closes, as when a machine loses power); host B, already serving,
    recovers its jobs on its heartbeat and terminates their backends."""
    first = start_server(fresh_dsn, tmp_path / "a", env=ENV, demo_rows=2000)
    runners: list[int] = []
    try:
        jobs = [submit_slow(first) for _ in range(2)]
        wait_until(
            lambda: (
                len(backends(fresh_dsn, leaders=True)) == 2
                and all(len(job(fresh_dsn, j)["backend_pids"] or ()) for j in jobs)
            ),
            60,
            "the slow queries did not start",
        )
        runners = [job(fresh_dsn, j)["runner_pid"] for j in jobs]
        second = start_server(fresh_dsn, tmp_path / "b", env=ENV, demo_rows=0)
        try:
            for runner in runners:
                os.kill(runner, signal.SIGSTOP)
            killed = time.monotonic()
            first.kill()
            wait_until(
                lambda: all(job(fresh_dsn, j)["phase"] == "ERROR" for j in jobs),
                20,
                "host B did not recover host A's jobs",
            )
            ended = time.monotonic() - killed
            wait_until(lambda: not backends(fresh_dsn), 10, "host A's queries run on")
            gone = time.monotonic() - killed
            print(f"SIGKILL to ERROR {ended:.2f} s, to queries gone {gone:.2f} s")
            assert gone < 10.0  # lease 2 s, heartbeat every 0.67 s
            for job_id in jobs:
                assert "server stopped" in job(fresh_dsn, job_id)["error_message"]
                url = f"{second.tap_url}/async/{urllib.parse.quote(job_id)}/phase"
                assert urllib.request.urlopen(url).read() == b"ERROR"
        finally:
            second.stop()
    finally:
        for runner in runners:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(runner, sig)
                except ProcessLookupError:
                    pass

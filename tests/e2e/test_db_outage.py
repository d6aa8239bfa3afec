"""The database restarts or goes away: 503 with Retry-After, never 500; WAIT
waits; an executing job keeps its real error; afterwards all works again.

The server runs on a private PostgreSQL cluster that the tests stop and start
(the session's shared cluster is left alone).
"""

from __future__ import annotations

import asyncio
import http.client
import os
import secrets
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import testdb
from liveserver import NO_REDIRECT, LiveServer, start_server

from aiouws.storage.pgcluster import EmbeddedCluster

#: Short lease: the outage outlasts it, and the job must still keep its error.
ENV = {
    "AIOUWS_LEASE_SECONDS": "2",
    "AIOUWS_SLOTS_PER_KIND": "1",
    "AIOUWS_TAP_SLOTS": "1",
}
#: The outage of the issue (a 30 s one sent 18,000 requests from 10 clients).
OUTAGE = 30.0
SYNC = "/tap/sync?" + urllib.parse.urlencode(
    {"LANG": "ADQL", "QUERY": "SELECT TOP 3 id FROM demo.stars"}
)
SMALL_QUERY = "SELECT id FROM demo.stars WHERE id < 3"
SLOW_QUERY = (
    "SELECT a.id FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"
    " WHERE a.ra + b.ra + c.ra < -12345.5"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedCluster]:
    root = Path(tempfile.mkdtemp(prefix="aiouws-outage-pg-"))
    os.chmod(root, 0o755)
    private = EmbeddedCluster(
        root,
        port=20000 + secrets.randbelow(20000),
        fast_unsafe=True,
        database="outage",
    )
    private.ensure_running()
    yield private
    private.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(
    cluster: EmbeddedCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    live = start_server(
        cluster.dsn(), tmp_path_factory.mktemp("outage"), demo_rows=2000, env=ENV
    )
    yield live
    live.stop()


def request(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body (status 0: no HTTP answer, -1: a body cut off)."""
    try:
        with NO_REDIRECT.open(url, data=data, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except OSError:
        return 0, {}, b""
    except http.client.HTTPException:  # a stream cut short after its 200
        return -1, {}, b""


def submit(server: LiveServer, path: str, **params: str) -> str:
    data = urllib.parse.urlencode({**params, "PHASE": "RUN"}).encode()
    status, headers, body = request(server.url + path, data)
    assert status == 303, body
    return headers["Location"].rsplit("/", 1)[1]


def phase(server: LiveServer, path: str, job_id: str) -> str:
    return request(f"{server.url}{path}/{job_id}/phase")[2].decode()


def wait_phase(server: LiveServer, path: str, job_id: str, wanted: set[str]) -> str:
    deadline = time.monotonic() + 60
    while (current := phase(server, path, job_id)) not in wanted:
        assert time.monotonic() < deadline, f"{current}\n{server.log()}"
        time.sleep(0.2)
    return current


def restart(cluster: EmbeddedCluster, pause: float = 0.0) -> float:
    """Stop the cluster (fast: sessions get 57P01), wait, start it; seconds down."""
    start = time.monotonic()
    cluster.stop("fast")
    time.sleep(pause)
    cluster.ensure_running()
    return time.monotonic() - start


class Load:
    """Clients sending a mix of requests in a loop, counting the answers."""

    def __init__(self, server: LiveServer, job_id: str, clients: int = 6) -> None:
        self.urls = [
            server.url + SYNC,
            server.url + "/tap/tables",
            server.url + "/tap/async",
            f"{server.url}/jobs/demo/{job_id}",
            server.url + "/tap/availability",
        ]
        self.statuses: Counter[int] = Counter()
        self.bare_503 = 0
        self.bodies_500: list[bytes] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(clients)
        ]

    def _client(self, index: int) -> None:
        n = index
        while not self._stop.is_set():
            status, headers, body = request(self.urls[n % len(self.urls)])
            n += 1
            self.statuses[status] += 1
            if status == 503 and "Retry-After" not in headers:
                self.bare_503 += 1
            if status >= 500 and status != 503:
                self.bodies_500.append(body[:300])

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(70)


def test_a_restart_under_load_gives_no_500(
    server: LiveServer, cluster: EmbeddedCluster
) -> None:
    job_id = submit(server, "/jobs/demo", seconds="600")
    with Load(server, job_id) as load:
        time.sleep(1.0)
        down = restart(cluster)
        time.sleep(3.0)
    print(f"restart took {down:.1f} s; answers: {dict(load.statuses)}")
    assert load.statuses[200] > 0
    assert not load.bodies_500, load.bodies_500[:3]
    assert not [s for s in load.statuses if s >= 500 and s != 503]
    assert load.bare_503 == 0
    assert 0 not in load.statuses  # every request got an HTTP answer
    # After the restart the service works without one of its own.
    status, _, body = request(server.url + SYNC)
    assert status == 200, body
    aborted = request(
        f"{server.url}/jobs/demo/{job_id}/phase", b"PHASE=ABORT"
    )  # frees the kind's one slot
    assert aborted[0] == 303, aborted
    done = submit(server, "/jobs/demo", seconds="0")
    assert wait_phase(server, "/jobs/demo", done, {"COMPLETED", "ERROR"}) == (
        "COMPLETED"
    )
    assert "Task exception was never retrieved" not in server.log()


def test_an_outage_503s_with_retry_after_in_dali_for_tap(
    server: LiveServer, cluster: EmbeddedCluster
) -> None:
    cluster.stop("fast")
    try:
        # Job resources, not job lists: an anonymous list is empty without a
        # database read (README, Authentication and anonymous users).
        jobs = ("/tap/async/" + "n" * 22, "/jobs/demo/" + "n" * 22)  # no such job
        for path in (SYNC, "/tap/tables?detail=min", *jobs):
            status, headers, body = request(server.url + path)
            if path == "/tap/tables?detail=min" and status == 200:
                continue  # the catalogue read before the outage still serves
            assert status == 503, (path, status, body)
            assert int(headers["Retry-After"]) > 0
            if path == SYNC:
                assert b"QUERY_STATUS" in body and b"ERROR" in body, body
                assert b"database unavailable" in body
    finally:
        cluster.ensure_running()


def test_an_outage_keeps_waits_waiting_and_jobs_their_errors(
    server: LiveServer, cluster: EmbeddedCluster
) -> None:
    waited = submit(server, "/jobs/demo", seconds="600")
    slow = submit(server, "/tap/async", LANG="ADQL", QUERY=SLOW_QUERY, MAXREC="99999")
    assert wait_phase(server, "/tap/async", slow, {"EXECUTING"}) == "EXECUTING"
    # Unbounded (no TOP, MAXREC above the inline lane's): waits for the runner.
    queued = submit(
        server, "/tap/async", LANG="ADQL", QUERY=SMALL_QUERY, MAXREC="99999"
    )
    assert phase(server, "/tap/async", queued) == "QUEUED"
    time.sleep(1.0)  # the query runs
    sent: Counter[int] = Counter()
    stop = threading.Event()

    def waiter() -> None:  # a client that polls with WAIT, at once again
        while not stop.is_set():
            url = f"{server.url}/jobs/demo/{waited}?WAIT=10&PHASE=EXECUTING"
            sent[request(url)[0]] += 1

    cluster.stop("fast")
    clients = [threading.Thread(target=waiter, daemon=True) for _ in range(10)]
    for thread in clients:
        thread.start()
    time.sleep(OUTAGE)
    cluster.ensure_running()
    stop.set()
    for thread in clients:
        thread.join(30)
    print(f"10 WAIT clients during a {OUTAGE:g} s outage sent {sum(sent.values())}")
    # Each WAIT waits its 10 s through the outage (before: back at once).
    assert sum(sent.values()) <= 10 * (OUTAGE / 10 + 2), sent
    assert not [s for s in sent if s >= 500 and s != 503], sent
    # The TAP job died with the database: its own error, once recorded.
    assert wait_phase(server, "/tap/async", slow, {"ERROR", "COMPLETED"}) == "ERROR"
    row = asyncio.run(testdb.job_row(cluster.dsn(), slow, columns="error_message"))
    message = row["error_message"]
    assert "lease" not in message and "server stopped" not in message, message
    assert "terminating connection" in message or "unavailable" in message, message
    # The job queued behind it runs, on a runner that found the database again.
    assert wait_phase(server, "/tap/async", queued, {"COMPLETED", "ERROR"}) == (
        "COMPLETED"
    ), server.log()[-3000:]
    assert "Task exception was never retrieved" not in server.log()

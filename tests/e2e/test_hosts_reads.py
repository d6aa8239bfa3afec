"""Read-after-write across hosts: a change committed on host B is what host A
answers next, however soon, even before A hears B's announcement (NOTIFY).

Host A's listener is held back (its PostgreSQL backend stopped with SIGSTOP:
nothing closes, A still believes it listens) while B changes jobs that A has
just finished or runs: the announcement is late, as on a loaded network, and
A's very next GET or WAIT must show B's change all the same.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from liveserver import NO_REDIRECT, LiveServer, http_get
from test_dead_queries import running_query, submit_slow
from test_hosts import _listener_backend, _two_hosts, job_row_claimant

TINY = "SELECT TOP 2 id FROM demo.stars"


def _post(url: str, form: dict[str, str]) -> str:
    """POST ``form``; the Location of the 303 that must answer it."""
    data = urllib.parse.urlencode(form).encode()
    try:
        NO_REDIRECT.open(url, data=data, timeout=30)
    except urllib.error.HTTPError as exc:
        assert exc.code == 303, exc.read()
        return str(exc.headers["Location"])
    raise AssertionError(f"no redirect from {url}")


def _finished_on(host: LiveServer) -> str:
    """A tiny query run in ``host``'s fast lane (so ``host`` wrote its end),
    read there until COMPLETED; its id."""
    form = {"LANG": "ADQL", "QUERY": TINY, "PHASE": "RUN"}
    job_id = _post(host.tap_url + "/async", form).rsplit("/", 1)[1]
    status, body = http_get(f"{host.tap_url}/async/{job_id}?WAIT=5")
    assert status == 200 and b"<uws:phase>COMPLETED</uws:phase>" in body, body
    status, _ = http_get(f"{host.tap_url}/async/{job_id}/results/result")
    assert status == 200
    return job_id


def _phase(body: bytes) -> str:
    return body.split(b"<uws:phase>", 1)[1].split(b"<", 1)[0].decode() if body else ""


@contextmanager
def _deaf(dsn: str, host: LiveServer) -> Iterator[None]:
    """``host`` hears no announcement meanwhile (its listener's backend
    stopped); what it missed arrives when the block ends."""
    backend = _listener_backend(dsn, host.process.pid)
    os.kill(backend, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(backend, signal.SIGCONT)


def test_a_change_made_on_another_host_is_read_at_once(
    fresh_dsn: str, tmp_path: Path
) -> None:
    a, b = _two_hosts(fresh_dsn, tmp_path, {})
    try:
        archived, deleted = _finished_on(a), _finished_on(a)
        stale: list[tuple[str, int, bytes]] = []
        with _deaf(fresh_dsn, a):
            started = time.monotonic()
            _post(f"{b.tap_url}/async/{archived}/phase", {"PHASE": "ARCHIVE"})
            _post(f"{b.tap_url}/async/{deleted}", {"ACTION": "DELETE"})
            # What A answers at once (each expected status, and a text it shows).
            job = f"{a.tap_url}/async/{archived}"
            deleted_job = f"{a.tap_url}/async/{deleted}"
            expected = [
                (job, 200, b"<uws:phase>ARCHIVED</uws:phase>"),
                (job + "?WAIT=5", 200, b"<uws:phase>ARCHIVED</uws:phase>"),
                (job + "?WAIT=-1", 200, b"<uws:phase>ARCHIVED</uws:phase>"),
                (job + "/phase", 200, b"ARCHIVED"),
                (job + "/results/result", 404, b""),  # archived: results gone
                (deleted_job, 404, b""),
                (deleted_job + "?WAIT=5", 404, b""),
                (deleted_job + "/results/result", 404, b""),
            ]
            for url, status, shown in expected:
                got, body = http_get(url)
                if got != status or shown not in body:
                    stale.append((url.removeprefix(a.tap_url), got, body[:300]))
            took = time.monotonic() - started
        assert stale == []
        assert took < 5  # well before the listener's probe would notice
    finally:
        for host in (a, b):
            host.stop()


def test_an_abort_made_on_another_host_ends_a_wait_at_once(
    fresh_dsn: str, tmp_path: Path
) -> None:
    """Host A runs the job (its supervisor wrote it EXECUTING); B aborts it: a
    WAIT on A for the end of EXECUTING returns ABORTED at once."""
    hosts = _two_hosts(fresh_dsn, tmp_path, {})
    try:
        job_id = submit_slow(hosts[0])
        running_query(fresh_dsn, job_id)
        a = next(
            h for h in hosts if h.process.pid == job_row_claimant(fresh_dsn, job_id)
        )
        b = next(h for h in hosts if h is not a)
        with _deaf(fresh_dsn, a):
            _post(f"{b.tap_url}/async/{job_id}/phase", {"PHASE": "ABORT"})
            started = time.monotonic()
            status, body = http_get(
                f"{a.tap_url}/async/{job_id}?WAIT=4&PHASE=EXECUTING"
            )
            took = time.monotonic() - started
        assert (status, _phase(body)) == (200, "ABORTED"), body
        assert took < 2.0, f"WAIT slept {took:.1f} s on a stale EXECUTING"
    finally:
        for host in hosts:
            host.stop()

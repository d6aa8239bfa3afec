"""Jobs of the ``demo`` kind on a live server: submit, read and wait for a phase.

Through plain HTTP (``urllib``, redirects not followed) and, for what the API
does not show, the job's row in the database (``job_row``).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from functools import partial

import testdb
from liveserver import NO_REDIRECT, LiveServer

__all__ = ["job_row", "phase", "submit", "wait_phase"]


def submit(server: LiveServer, **params: str) -> str:
    data = urllib.parse.urlencode({**params, "PHASE": "RUN"}).encode()
    try:
        NO_REDIRECT.open(server.url + "/jobs/demo", data=data, timeout=30)
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


#: A job's row as the crash and worker tests read it.
job_row = partial(
    testdb.job_row, columns="phase::text, error_message, start_time, results::text"
)

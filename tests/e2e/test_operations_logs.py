"""The access log and the query log of a live server, in both log formats.

Every request leaves a ``request`` line (method, path with its query string but
no secret values, status, bytes, seconds, owner); every TAP query a ``query``
line (owner, job id or ``sync``, ADQL digest, rows, bytes, seconds, format,
outcome), whether it ran for /sync, in the server's fast lane or in a runner.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator

import pytest
from liveserver import LiveServer, start_server
from opskit import call, log_entries, run_tap_job, wait_for_entry

ALICE = {"X-Remote-User": "alice"}
SMALL = "SELECT TOP 3 id, ra FROM demo.stars ORDER BY id"
BIG = "SELECT id FROM demo.stars"


@pytest.fixture(scope="module", params=["text", "json"])
def logged_server(
    request: pytest.FixtureRequest,
    e2e_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiveServer, str]]:
    fmt = str(request.param)
    server = start_server(
        e2e_dsn,
        tmp_path_factory.mktemp(f"logs-{fmt}"),
        env={"AIOUWS_AUTH": "header", "AIOUWS_LOG_FORMAT": fmt},
    )
    yield server, fmt
    server.stop()
    if server.process.returncode not in (0, -signal.SIGTERM):
        print(server.log())


def test_access_line_per_request_without_secrets(
    logged_server: tuple[LiveServer, str],
) -> None:
    server, fmt = logged_server
    status, _, body = call(
        server.tap_url + "/sync?LANG=ADQL&QUERY=SELECT+TOP+1+id+FROM+demo.stars"
        "&password=s3cret&mark=access1",
        headers={**ALICE, "Authorization": "Basic c2VjcmV0OnNlY3JldA=="},
    )
    assert status == 200, body
    entry = wait_for_entry(server, fmt, "request", status="200", owner="alice")
    matching = [
        e
        for e in log_entries(server, fmt)
        if e.get("message") == "request" and "mark=access1" in str(e.get("path"))
    ]
    assert len(matching) == 1
    entry = matching[0]
    assert entry["method"] == "GET"
    assert str(entry["path"]).startswith("/tap/sync?LANG=ADQL&QUERY=SELECT")
    assert "password=***" in str(entry["path"])
    # bytes on the wire: headers (and chunk framing) included, as aiohttp's %b
    assert len(body) < int(str(entry["bytes"])) < len(body) + 2000
    assert 0 <= float(str(entry["seconds"])) < 60
    assert entry["owner"] == "alice"
    assert "s3cret" not in server.log()
    assert "c2VjcmV0" not in server.log()
    status, _, _ = call(server.url + "/no/such/page?mark=missing")
    assert status == 404
    wait_for_entry(server, fmt, "request", status="404", owner="-")


def test_query_line_sync(logged_server: tuple[LiveServer, str]) -> None:
    server, fmt = logged_server
    query = "SELECT TOP 2 id\n  FROM demo.stars  -- sync query"
    status, _, body = call(
        server.tap_url + "/sync",
        data={"LANG": "ADQL", "QUERY": query, "RESPONSEFORMAT": "csv"},
        headers=ALICE,
    )
    assert status == 200, body
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    entry = wait_for_entry(server, fmt, "query", adql_sha256=digest)
    assert entry["owner"] == "alice"
    assert entry["job_id"] == "sync"
    assert entry["adql"] == "SELECT TOP 2 id FROM demo.stars -- sync query"
    assert str(entry["rows"]) == "2"
    assert str(entry["bytes"]) == str(len(body))
    assert entry["format"] == "csv"
    assert entry["outcome"] == "ok"


def test_query_line_of_bad_adql_names_the_error(
    logged_server: tuple[LiveServer, str],
) -> None:
    server, fmt = logged_server
    query = "SELECT nosuchcolumn FROM demo.stars"
    status, _, _ = call(server.tap_url + "/sync", data={"LANG": "ADQL", "QUERY": query})
    assert status == 400
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    entry = wait_for_entry(server, fmt, "query", adql_sha256=digest)
    assert entry["outcome"] == "error:TapUsageError"
    assert entry["owner"] == "-"


def test_query_line_async_fast_lane_and_runner(
    logged_server: tuple[LiveServer, str],
) -> None:
    server, fmt = logged_server
    small_id, phase = run_tap_job(server.tap_url, SMALL, headers=ALICE)
    assert phase == "COMPLETED"
    entry = wait_for_entry(server, fmt, "query", job_id=small_id)
    assert entry["owner"] == "alice"
    assert str(entry["rows"]) == "3"
    assert entry["format"] == "binary2"
    assert entry["outcome"] == "ok"
    big_id, phase = run_tap_job(server.tap_url, BIG, headers=ALICE, MAXREC="2000")
    assert phase == "COMPLETED"
    entry = wait_for_entry(server, fmt, "query", job_id=big_id)  # from a runner
    assert entry["owner"] == "alice"
    assert str(entry["rows"]) == "2000"
    assert entry["outcome"] == "overflow"
    _, _, result = call(
        server.tap_url + f"/async/{big_id}/results/result", headers=ALICE
    )
    assert str(entry["bytes"]) == str(len(result))

"""Any host serves any job: two real servers on one database, each with its own
local directory, sharing a real S3-compatible results store (moto's S3 server).

Host A streams results through itself (``results_delivery = stream``), host B
answers with a 303 to a presigned URL (the default). Jobs submitted on one host
are waited for, aborted, fetched and deleted on the other; uploads sent to A
run on B; error documents are the VOTable ones on either host; the sweep removes
objects without a job row; results a SIGKILLed host finished stay served.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from astropy.io.votable import parse_single_table
from liveserver import NO_REDIRECT, LiveServer, start_server
from s3kit import S3Server, moto_s3

VOTABLE = "application/x-votable+xml"
#: Every star of the demo table: beyond the fast lane (no TOP, no MAXREC), so
#: a runner process writes the result into the store.
QUERY = "SELECT id, ra, dec FROM demo.stars"
#: Minutes of work that return nothing (as in test_dead_queries).
SLOW = (
    "SELECT a.id FROM demo.stars AS a, demo.stars AS b, demo.stars AS c"
    " WHERE a.ra + b.ra + c.ra < -12345.5"
)
ROWS = 5000
ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
#: One slot per host (so that a busy host leaves queued jobs to the other),
#: short leases, and a sweep every second of objects 3 s old.
ENV = {
    "AIOUWS_LEASE_SECONDS": "2",
    "AIOUWS_TAP_SLOTS": "1",
    "AIOUWS_RESULTS_SWEEP_SECONDS": "1",
    "AIOUWS_RESULTS_SWEEP_GRACE": "3",
}


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def start_host(
    dsn: str, directory: Path, s3: S3Server, *, demo: bool, **env: str
) -> LiveServer:
    directory.mkdir(parents=True, exist_ok=True)
    return start_server(
        dsn,
        directory,
        demo_rows=ROWS if demo else 0,
        env={**ENV, **s3.env(directory), **env},
    )


@pytest.fixture(scope="module")
def hosts(
    e2e_dsn: str, s3: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    a = start_host(
        e2e_dsn,
        tmp_path_factory.mktemp("host-a"),
        s3,
        demo=True,
        AIOUWS_RESULTS_DELIVERY="stream",
    )
    try:
        b = start_host(e2e_dsn, tmp_path_factory.mktemp("host-b"), s3, demo=False)
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.stop()
    a.stop()


# -- HTTP -----------------------------------------------------------------------


def request(
    url: str, data: bytes | None = None, method: str | None = None, **headers: str
) -> tuple[int, Mapping[str, str], bytes]:
    """Status, headers and body; redirects are not followed."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with NO_REDIRECT.open(req, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def multipart(
    fields: Mapping[str, str], files: Mapping[str, bytes]
) -> tuple[bytes, str]:
    boundary = "b" + secrets.token_hex(8)
    head = f"--{boundary}\r\nContent-Disposition: form-data; "
    parts = [f'{head}name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    for name, content in files.items():
        parts.append(
            f'{head}name="{name}"; filename="{name}.xml"\r\n'.encode()
            + f"Content-Type: {VOTABLE}\r\n\r\n".encode()
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def submit(host: LiveServer, query: str, files: Mapping[str, bytes] = {}) -> str:
    fields = {"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"}
    if files:
        fields["UPLOAD"] = ";".join(f"{n},param:{n}" for n in files)
        body, content_type = multipart(fields, files)
    else:
        body = urllib.parse.urlencode(fields).encode()
        content_type = "application/x-www-form-urlencoded"
    status, headers, text = request(
        host.tap_url + "/async", body, **{"Content-Type": content_type}
    )
    assert status == 303, text
    return headers["Location"].rsplit("/", 1)[1]


def job_url(host: LiveServer, job_id: str) -> str:
    return f"{host.tap_url}/async/{job_id}"


def phase(host: LiveServer, job_id: str) -> str:
    return request(job_url(host, job_id) + "/phase")[2].decode()


def wait_phase(host: LiveServer, job_id: str, wanted: set[str]) -> str:
    """WAIT on ``host`` until the job is in one of ``wanted`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while (current := phase(host, job_id)) not in wanted:
        assert time.monotonic() < deadline, f"{job_id} stayed {current}\n{host.log()}"
        request(f"{job_url(host, job_id)}?WAIT=5&PHASE={current}")
    return current


def rows_of(document: bytes) -> int:
    return len(parse_single_table(io.BytesIO(document)).array)


async def _claimers(dsn: str, job_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT job_id, claimed_by FROM uws.job WHERE job_id = ANY($1::text[])",
            job_ids,
        )
    finally:
        await conn.close()
    return {r["job_id"]: int(str(r["claimed_by"]).split(":")[1]) for r in rows}


def claimers(dsn: str, job_ids: list[str]) -> dict[str, int]:
    """The pid of the server process that ran each job."""
    return asyncio.run(_claimers(dsn, job_ids))


def local_files(host: LiveServer) -> list[Path]:
    """Files in the host's local jobs directory (the upload spool aside)."""
    jobs = host.data_dir / "jobs"
    return [p for p in jobs.rglob("*") if p.is_file() and ".spool" not in p.parts]


def wait_until(condition: object, what: str, bound: float = 30.0) -> float:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < bound, f"no {what} after {bound} s"
        time.sleep(0.05)
    return time.monotonic() - started


# -- any host ---------------------------------------------------------------------


def test_jobs_submitted_on_a_are_served_by_b_and_a(
    hosts: tuple[LiveServer, LiveServer], s3: S3Server, e2e_dsn: str
) -> None:
    a, b = hosts
    jobs = [submit(a, QUERY) for _ in range(4)]
    for job_id in jobs:
        assert wait_phase(b, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
    ran_on = claimers(e2e_dsn, jobs)
    assert set(ran_on.values()) <= {a.process.pid, b.process.pid}
    for job_id in jobs:
        assert s3.keys(f"{job_id}/") == [f"{job_id}/result.vot"]
        status, headers, _ = request(job_url(b, job_id) + "/results/result")
        assert status == 303
        location = headers["Location"]
        assert location.startswith(f"{s3.endpoint}/{s3.bucket}/{job_id}/result.vot?")
        assert "X-Amz-Signature=" in location
        status, stored, document = request(location)
        assert status == 200
        assert stored["Content-Type"] == VOTABLE
        assert stored["Content-Disposition"] == 'attachment; filename="result.vot"'
        assert rows_of(document) == ROWS
        status, streamed, body = request(job_url(a, job_id) + "/results/result")
        assert (status, streamed["Content-Type"], body) == (200, VOTABLE, document)
    # Written into the store as they streamed: nothing on either local disk.
    assert local_files(a) == [] and local_files(b) == []


def test_uploads_sent_to_a_run_on_b_while_a_is_busy(
    hosts: tuple[LiveServer, LiveServer], s3: S3Server, e2e_dsn: str
) -> None:
    a, b = hosts
    busy = _occupy(a, e2e_dsn)
    try:
        table = _ids_votable([3, 5, 8])
        uploads = [
            submit(
                a,
                "SELECT s.id FROM demo.stars AS s JOIN TAP_UPLOAD.t1 AS t"
                " ON s.id = t.id",
                {"t1": table},
            )
            for _ in range(4)
        ]
        for job_id in uploads:
            assert wait_phase(a, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED", (
                request(job_url(a, job_id) + "/error")[2]
            )
        assert set(claimers(e2e_dsn, uploads).values()) == {b.process.pid}
        for job_id in uploads:
            assert f"{job_id}/upload-t1" in s3.keys(f"{job_id}/")
            status, headers, document = request(job_url(a, job_id) + "/results/result")
            assert status == 200 and headers["Content-Type"] == VOTABLE
            ids = parse_single_table(io.BytesIO(document)).array["id"]
            assert sorted(int(i) for i in ids) == [3, 5, 8]
    finally:
        # ABORT on B the job A runs: it stops on A.
        started = time.monotonic()
        abort(b, busy)
        assert wait_phase(a, busy, {"ABORTED", "ERROR", "COMPLETED"}) == "ABORTED"
        assert time.monotonic() - started < 10


def _occupy(host: LiveServer, dsn: str) -> str:
    """A slow job that ``host`` itself runs (its one slot is then busy)."""
    for _ in range(5):
        job_id = submit(host, SLOW)
        wait_phase(host, job_id, {"EXECUTING"})
        if claimers(dsn, [job_id])[job_id] == host.process.pid:
            return job_id
        # The other host took it: stop it there, try again.
        abort(host, job_id)
        wait_phase(host, job_id, {"ABORTED"})
    raise AssertionError("the host never ran a job itself")


def abort(host: LiveServer, job_id: str) -> None:
    form = urllib.parse.urlencode({"PHASE": "ABORT"}).encode()
    assert request(job_url(host, job_id) + "/phase", form)[0] == 303


def _ids_votable(ids: list[int]) -> bytes:
    rows = "".join(f"<TR><TD>{i}</TD></TR>" for i in ids)
    return (
        '<?xml version="1.0"?><VOTABLE version="1.4"'
        ' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
        '<FIELD name="id" datatype="long"/><DATA><TABLEDATA>'
        f"{rows}</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    ).encode()


def test_delete_on_either_host_removes_the_objects(
    hosts: tuple[LiveServer, LiveServer], s3: S3Server
) -> None:
    a, b = hosts
    on_a, on_b = submit(a, QUERY), submit(b, QUERY)
    for job_id in (on_a, on_b):
        assert wait_phase(a, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
        assert s3.keys(f"{job_id}/") != []
    assert request(job_url(b, on_a), method="DELETE")[0] == 303
    assert request(job_url(a, on_b), method="DELETE")[0] == 303
    for job_id in (on_a, on_b):
        assert s3.keys(f"{job_id}/") == []
        assert request(job_url(a, job_id))[0] == 404
        assert request(job_url(b, job_id))[0] == 404


def test_archive_and_destruction_on_b_remove_objects_a_wrote(
    hosts: tuple[LiveServer, LiveServer], s3: S3Server
) -> None:
    a, b = hosts
    archived, destroyed = submit(a, QUERY), submit(a, QUERY)
    for job_id in (archived, destroyed):
        assert wait_phase(a, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
        assert s3.keys(f"{job_id}/") == [f"{job_id}/result.vot"]
    form = urllib.parse.urlencode({"PHASE": "ARCHIVE"}).encode()
    assert request(job_url(b, archived) + "/phase", form)[0] == 303
    assert s3.keys(f"{archived}/") == []
    assert phase(a, archived) == "ARCHIVED"  # UWS 1.1: metadata kept, results gone
    soon = datetime.now(UTC) + timedelta(seconds=1)
    form = urllib.parse.urlencode({"DESTRUCTION": soon.strftime(ISO)}).encode()
    assert request(job_url(b, destroyed) + "/destruction", form)[0] == 303
    seconds = wait_until(lambda: s3.keys(f"{destroyed}/") == [], "destruction")
    assert seconds < 30  # B's timer, woken by the change: about a second
    assert request(job_url(a, destroyed))[0] == 404


def test_error_documents_are_votables_on_either_host(
    hosts: tuple[LiveServer, LiveServer],
) -> None:
    a, b = hosts
    # One fails in A's runner (division by zero), one at RUN (bad ADQL: the
    # server writes the document).
    failed = submit(a, "SELECT id / (id - id) FROM demo.stars")
    rejected = submit(a, "SELECT FROM WHERE")
    for job_id in (failed, rejected):
        assert wait_phase(b, job_id, {"COMPLETED", "ERROR"}) == "ERROR"
        for host in (a, b):
            status, headers, body = request(job_url(host, job_id) + "/error")
            assert status == 200
            assert headers["Content-Type"] == VOTABLE
            assert b'name="QUERY_STATUS" value="ERROR"' in body
    assert b"division by zero" in request(job_url(b, failed) + "/error")[2]


def test_the_sweep_removes_objects_without_a_job(
    hosts: tuple[LiveServer, LiveServer], s3: S3Server
) -> None:
    a, _ = hosts
    kept = submit(a, QUERY)
    assert wait_phase(a, kept, {"COMPLETED", "ERROR"}) == "COMPLETED"
    orphan = secrets.token_urlsafe(16)
    s3.client.put_object(Bucket=s3.bucket, Key=f"{orphan}/result.vot", Body=b"x")
    seconds = wait_until(lambda: s3.keys(f"{orphan}/") == [], "sweep", bound=60)
    # Grace 3 s, a pass every second: gone in about 4 s (loaded machine: 60);
    # not before the grace, less S3's whole-second Last-Modified.
    assert seconds >= 1.9
    assert s3.keys(f"{kept}/") == [f"{kept}/result.vot"]


# -- a host killed ------------------------------------------------------------------


def test_results_a_killed_host_finished_stay_served(
    fresh_dsn: str, s3: S3Server, tmp_path: Path
) -> None:
    # Another database: its own part of the bucket (the module's hosts would
    # sweep this one's objects, which have no row in their database).
    prefix = "killed"
    a = start_host(
        fresh_dsn, tmp_path / "a", s3, demo=True, AIOUWS_RESULTS_PREFIX=prefix
    )
    b: LiveServer | None = None
    try:
        finished = [submit(a, QUERY) for _ in range(3)]
        for job_id in finished:
            assert wait_phase(a, job_id, {"COMPLETED", "ERROR"}) == "COMPLETED"
        running = submit(a, SLOW)
        wait_phase(a, running, {"EXECUTING"})
        b = start_host(
            fresh_dsn, tmp_path / "b", s3, demo=False, AIOUWS_RESULTS_PREFIX=prefix
        )
        a.kill()  # SIGKILL, runners included
        for job_id in finished:
            status, headers, body = request(job_url(b, job_id) + "/results/result")
            assert status == 303, (status, body, b.log()[-4000:])
            status, stored, document = request(headers["Location"])
            assert status == 200 and stored["Content-Type"] == VOTABLE
            assert rows_of(document) == ROWS
        # B's lease recovery ends the killed host's job (its half-written
        # multipart upload was never completed: no object).
        assert wait_phase(b, running, {"ERROR", "ABORTED", "COMPLETED"}) == "ERROR"
        assert s3.keys(f"{prefix}/{running}/") in (
            [],
            [f"{prefix}/{running}/error.vot"],
        )
    finally:
        a.kill()
        if b is not None:
            b.stop()

"""A full disk under the jobs directory: the job ends in ERROR saying so, and its
``/error`` is a valid DALI document, never an empty 200 (before: "database
unavailable: [Errno 28] No space left on device" and a 0-byte error file).

The jobs directory is a 1 MB tmpfs (needs root and mount rights, as CI has;
skipped with the reason otherwise).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from lxml import etree
from testkit import Client
from yarl import URL

from aiouws.config import Settings
from taprunner.settings import TapSettings
from taprunner.web.app import create_tap_app

NO_SPACE = "no space left on device (jobs directory)"
#: About 5 MB of TABLEDATA: more than the whole tmpfs (a runner's job).
BIG = "SELECT TOP 100000 a.id, a.ra, b.dec FROM demo.stars AS a, demo.stars AS b"
#: 1,000 rows of the demo table (the fast lane's, in the server).
SMALL = "SELECT TOP 1000 * FROM demo.stars"
VOTABLE_NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"


@pytest.fixture
def jobs_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs as the jobs directory."""
    mount_point = tmp_path / "jobs"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def app_settings(settings: Settings, jobs_tmpfs: Path) -> Settings:
    return replace(settings, jobs_dir=jobs_tmpfs)


@pytest.fixture
def app(app_settings: Settings) -> web.Application:
    tap = TapSettings.for_service(app_settings, slots=1, columnar=False)
    return create_tap_app(app_settings, tap, demo_rows=2000)


async def run_job(client: Client, query: str, fmt: str = "votable/td") -> str:
    resp = await client.post(
        "/tap/async",
        data={
            "LANG": "ADQL",
            "QUERY": query,
            "RESPONSEFORMAT": fmt,
            "MAXREC": "100000",
            "PHASE": "RUN",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    job = URL(resp.headers["Location"]).path
    for _ in range(30):
        phase = await (await client.get(f"{job}/phase")).text()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return job
        await client.get(f"{job}?WAIT=5&PHASE={phase}")
    raise AssertionError(f"job {job} never finished")


async def assert_no_space_error(client: Client, job: str) -> None:
    assert await (await client.get(f"{job}/phase")).text() == "ERROR"
    summary = await (await client.get(job)).text()
    assert NO_SPACE in summary and "database" not in summary, summary
    resp = await client.get(f"{job}/error")
    body = await resp.read()
    assert resp.status == 200 and body, (resp.status, body)
    tree = etree.fromstring(body)  # a valid DALI error document
    info = tree.find(f".//{VOTABLE_NS}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR"
    assert NO_SPACE in (info.text or "")


async def test_result_larger_than_the_disk(client: Client, jobs_tmpfs: Path) -> None:
    job = await run_job(client, BIG)
    await assert_no_space_error(client, job)
    # The half-written result is gone: the disk has room again.
    assert os.statvfs(jobs_tmpfs).f_bfree > os.statvfs(jobs_tmpfs).f_blocks // 2


async def test_fast_lane_result_on_a_full_disk(
    client: Client, jobs_tmpfs: Path
) -> None:
    filler = jobs_tmpfs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:  # fill the disk, then leave a few KB
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, os.path.getsize(filler) - 8192)
    job = await run_job(client, SMALL)
    await assert_no_space_error(client, job)
    filler.unlink()
    await asyncio.sleep(0)
    # With room again the same query completes.
    assert await (await client.get(f"{await run_job(client, SMALL)}/phase")).text() == (
        "COMPLETED"
    )


#: An uploaded VOTable of about 2 MB: more than the whole tmpfs.
UPLOAD = (
    b'<?xml version="1.0"?><VOTABLE version="1.3"'
    b' xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="id" datatype="int"/><DATA><TABLEDATA>'
    + b"<TR><TD>1</TD></TR>" * 110_000
    + b"</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
)


@pytest.mark.parametrize("path", ["/tap/sync", "/tap/async"])
async def test_upload_larger_than_the_disk(
    client: Client, path: str, jobs_tmpfs: Path
) -> None:
    """An upload the jobs directory's disk cannot hold is refused saying so
    (before: 500 "internal error"), and what was spooled of it is gone."""
    form = aiohttp.FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", "SELECT TOP 1 * FROM TAP_UPLOAD.t")
    form.add_field("UPLOAD", "t,param:t")
    form.add_field("t", UPLOAD, filename="t.xml", content_type="text/xml")
    resp = await client.post(path, data=form, allow_redirects=False)
    body = await resp.text()
    assert resp.status == 507, (resp.status, body[:300])
    assert "no space left on device" in body, body[:300]
    assert os.statvfs(jobs_tmpfs).f_bfree > os.statvfs(jobs_tmpfs).f_blocks // 2


@pytest.mark.parametrize("path", ["/tap/sync", "/tap/async"])
async def test_compressed_upload_whose_expansion_the_disk_cannot_hold(
    client: Client, path: str, jobs_tmpfs: Path
) -> None:
    """A compressed upload is expanded into a file beside it (the sync spool,
    the job's directory): a disk that cannot hold the expansion is said as
    such, not blamed on the client's document, and the file is removed."""
    form = aiohttp.FormData()
    form.add_field("LANG", "ADQL")
    form.add_field("QUERY", "SELECT TOP 1 * FROM TAP_UPLOAD.t")
    form.add_field("UPLOAD", "t,param:t")
    form.add_field("PHASE", "RUN")
    form.add_field("t", gzip.compress(UPLOAD), filename="t.xml.gz")
    resp = await client.post(path, data=form, allow_redirects=False)
    body = await resp.text()
    if path == "/tap/sync":
        assert resp.status == 507, (resp.status, body[:300])
        assert "no space left on device" in body, body[:300]
    else:
        assert resp.status == 303, (resp.status, body[:300])
        job = URL(resp.headers["Location"]).path
        for _ in range(30):
            phase = await (await client.get(f"{job}/phase")).text()
            if phase in ("COMPLETED", "ERROR", "ABORTED"):
                break
            await client.get(f"{job}?WAIT=5&PHASE={phase}")
        await assert_no_space_error(client, job)
    assert list(jobs_tmpfs.glob("**/.expanded-*")) == []
    assert os.statvfs(jobs_tmpfs).f_bfree > os.statvfs(jobs_tmpfs).f_blocks // 2

"""The results store's two backends against one contract: job directories
(LocalStore) and S3-compatible object storage (S3Results on a real moto S3
server). Results stream in (multipart, nothing on the local disk), are served
(presigned URL or streamed), go with their job, and the sweep removes the files
of jobs without a row."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from s3kit import S3Server, moto_s3

from aiouws.config import ConfigError, Settings
from aiouws.errors import ResultsUnavailable
from aiouws.models import JobParameter, NewJob
from aiouws.results import LocalStore, ResultStore, Served, StoreSpec, job_outputs
from aiouws.results.s3 import PART_BYTES, S3Results
from aiouws.results.store import object_key
from aiouws.results.sweep import OrphanSweep
from aiouws.storage.store import JobStore

VOTABLE = "application/x-votable+xml"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def s3_spec(s3: S3Server, directory: Path) -> StoreSpec:
    return StoreSpec(
        kind="s3",
        bucket=s3.bucket,
        endpoint=s3.endpoint,
        region="us-east-1",
        prefix="t-" + secrets.token_hex(4),  # each test its own part of the bucket
        credentials_file=str(s3.credentials_file(directory)),
    )


@pytest.fixture(params=["local", "s3"])
async def results(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[ResultStore]:
    if request.param == "local":
        store: ResultStore = LocalStore(tmp_path / "jobs")
        (tmp_path / "jobs").mkdir()
    else:
        spec = s3_spec(request.getfixturevalue("s3"), tmp_path)
        store = S3Results(spec, presign_seconds=60)
    yield store
    await store.close()


def job_id() -> str:
    return secrets.token_urlsafe(16)


def scratch(results: ResultStore, tmp_path: Path, job: str) -> Path:
    """The job's local directory, as a runner makes it."""
    if isinstance(results, LocalStore):
        path = results.job_dir(job)
    else:
        path = tmp_path / "scratch" / job
    path.mkdir(parents=True, exist_ok=True)
    return path


async def fetch(url: str) -> tuple[Mapping[str, str], bytes]:
    """Headers and body of a GET of ``url`` (a presigned URL)."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return response.headers, await response.read()


async def read(served: Served) -> bytes:
    if served.path is not None:
        return served.path.read_bytes()
    if served.url is not None:
        return (await fetch(served.url))[1]
    assert served.chunks is not None
    return b"".join([chunk async for chunk in served.chunks])


async def test_a_result_streams_in_and_is_served(
    results: ResultStore, tmp_path: Path
) -> None:
    job = job_id()
    workdir = scratch(results, tmp_path, job)
    outputs = results.outputs(job, workdir)
    chunk = os.urandom(MIB)
    with outputs.open("result.vot", VOTABLE, "result.vot") as out:
        for _ in range(20):
            out.write(chunk)
    assert await results.size(job, "result.vot") == 20 * MIB
    redirected = await results.serve(job, "result.vot", VOTABLE, redirect=True)
    streamed = await results.serve(job, "result.vot", VOTABLE, redirect=False)
    assert redirected is not None and streamed is not None
    assert await read(streamed) == chunk * 20
    if isinstance(results, LocalStore):
        assert redirected.path == workdir / "result.vot"
        return
    # Written as it streamed: a multipart upload of 3 parts of PART_BYTES, and
    # nothing on the local disk.
    assert list(workdir.iterdir()) == []
    assert 20 * MIB // PART_BYTES + 1 == 3
    assert redirected.url is not None and redirected.url.startswith("http://")
    headers, body = await fetch(redirected.url)
    assert headers["Content-Type"] == VOTABLE
    assert headers["Content-Disposition"] == 'attachment; filename="result.vot"'
    assert headers["ETag"].strip('"').endswith("-3")
    assert body == chunk * 20
    assert streamed.size == 20 * MIB


async def test_async_job_code_streams_a_result(
    results: ResultStore, tmp_path: Path
) -> None:
    job = job_id()
    workdir = scratch(results, tmp_path, job)
    outputs = results.outputs(job, workdir)
    chunk = os.urandom(MIB)
    async with outputs.open_async("result.vot", VOTABLE, "result.vot") as out:
        for _ in range(12):
            assert await out.write(chunk) == MIB
    assert await results.size(job, "result.vot") == 12 * MIB
    served = await results.serve(job, "result.vot", VOTABLE, redirect=False)
    assert served is not None and await read(served) == chunk * 12
    if not outputs.local:
        assert list(workdir.iterdir()) == []
    with pytest.raises(RuntimeError):
        async with outputs.open_async("other.vot", VOTABLE) as out:
            await out.write(chunk)
            raise RuntimeError("the query failed")
    assert await results.size(job, "other.vot") is None


async def test_a_failed_result_leaves_no_file(
    results: ResultStore, tmp_path: Path
) -> None:
    job = job_id()
    outputs = results.outputs(job, scratch(results, tmp_path, job))
    with pytest.raises(RuntimeError), outputs.open("result.vot", VOTABLE) as out:
        out.write(b"<VOTABLE>" * 1000)
        raise RuntimeError("the query failed")
    assert await results.size(job, "result.vot") is None
    assert await results.serve(job, "result.vot", VOTABLE, redirect=True) is None


async def test_uploads_placed_by_the_server_reach_the_runner(
    results: ResultStore, tmp_path: Path
) -> None:
    job = job_id()
    spooled = tmp_path / "spooled"
    spooled.write_bytes(b"<VOTABLE>upload</VOTABLE>")
    await results.put_file(job, "upload-t1", spooled, "application/octet-stream")
    assert not spooled.exists()  # moved or uploaded: never kept twice
    outputs = results.outputs(job, scratch(results, tmp_path, job))
    local = outputs.fetch("upload-t1")
    assert local is not None and local.read_bytes() == b"<VOTABLE>upload</VOTABLE>"
    assert outputs.fetch("upload-t2") is None


async def test_removing_a_job_removes_its_files_only(
    results: ResultStore, tmp_path: Path
) -> None:
    first, second = job_id(), job_id()
    await results.put(first, "error.vot", b"<VOTABLE/>", VOTABLE)
    await results.put(first, "error.txt", b"failed", "text/plain")
    await results.put(second, "error.vot", b"<VOTABLE/>", VOTABLE)
    assert await results.job_ids() >= {first, second}
    await results.remove_job(first)
    await results.remove_job(first)  # twice is harmless
    assert await results.size(first, "error.vot") is None
    assert await results.size(first, "error.txt") is None
    assert await results.size(second, "error.vot") == len(b"<VOTABLE/>")
    assert first not in await results.job_ids()


async def test_names_never_leave_a_job(results: ResultStore) -> None:
    for bad_id, name in (
        ("../" + job_id(), "result"),
        (job_id() + "/x", "result"),
        (job_id(), "../result"),
        (job_id(), "a/b"),
        (job_id(), ".hidden"),
    ):
        with pytest.raises(ValueError):
            object_key(bad_id, name)
        with pytest.raises(ValueError):
            await results.put(bad_id, name, b"x", "text/plain")
    await results.remove_job("../../etc")  # ignored, not an id


def new_job() -> NewJob:
    return NewJob(
        job_id=job_id(),
        kind="demo",
        owner=None,
        run_id=None,
        execution_duration=60,
        destruction_time=datetime.now(UTC) + timedelta(days=1),
        parameters=(JobParameter(name="x", value="1"),),
    )


async def test_the_sweep_removes_files_without_a_job_row(
    results: ResultStore, store: JobStore
) -> None:
    kept = (await store.create(new_job())).job_id
    orphan = job_id()
    for job in (kept, orphan):
        await results.put(job, "result.vot", b"<VOTABLE/>", VOTABLE)
    young = OrphanSweep(results, store, interval=1, grace=3600)
    assert await young.sweep() == 0  # the orphan may be a job being created
    await asyncio.sleep(1.1)  # file system and S3 times: whole seconds at worst
    swept = OrphanSweep(results, store, interval=1, grace=1)
    started = time.monotonic()
    assert await swept.sweep() == 1
    assert time.monotonic() - started < 10
    assert await results.size(orphan, "result.vot") is None
    assert await results.size(kept, "result.vot") is not None


async def test_an_unreachable_object_store_is_a_503(
    s3: S3Server, tmp_path: Path
) -> None:
    spec = StoreSpec(
        kind="s3",
        bucket="b",
        endpoint="http://127.0.0.1:9",  # nothing listens on the discard port
        region="us-east-1",
        credentials_file=str(s3.credentials_file(tmp_path)),
    )
    results = S3Results(spec)
    started = time.monotonic()
    with pytest.raises(ResultsUnavailable):
        await asyncio.wait_for(results.size(job_id(), "result.vot"), 120)
    print(f"refused after {time.monotonic() - started:.1f} s (retries included)")


async def test_runner_outputs_follow_the_spec(s3: S3Server, tmp_path: Path) -> None:
    spec = s3_spec(s3, tmp_path)
    job = job_id()
    (tmp_path / job).mkdir()
    outputs = job_outputs(spec, job, tmp_path / job)
    assert not outputs.local
    outputs.put("error.txt", b"boom\n", "text/plain; charset=utf-8")
    assert s3.keys(f"{spec.prefix}/{job}/") == [f"{spec.prefix}/{job}/error.txt"]
    assert job_outputs(None, job, tmp_path / job).local


def test_settings_of_the_results_store() -> None:
    settings = Settings.load(
        env={
            "AIOUWS_RESULTS_STORE": "s3",
            "AIOUWS_RESULTS_BUCKET": "results",
            "AIOUWS_RESULTS_PREFIX": "tap",
        }
    )
    assert settings.results_spec == StoreSpec(kind="s3", bucket="results", prefix="tap")
    assert Settings.load(env={}).results_spec == StoreSpec()
    for env, message in (
        ({"AIOUWS_RESULTS_STORE": "s3"}, "needs results_bucket"),
        ({"AIOUWS_RESULTS_STORE": "ftp"}, "local or s3"),
        ({"AIOUWS_RESULTS_DELIVERY": "mail"}, "redirect or stream"),
        ({"AIOUWS_RESULTS_PRESIGN_SECONDS": "0"}, "presign"),
        ({"AIOUWS_RESULTS_SWEEP_GRACE": "-1"}, "negative"),
        ({"AIOUWS_RESULTS_ENDPOINT": "minio:9000"}, "http"),
        ({"AIOUWS_RESULTS_CREDENTIALS_FILE": "/nonexistent.toml"}, "not a file"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.load(env=env)


async def test_a_page_preview_reads_only_the_head_of_a_stored_result(
    results: ResultStore, tmp_path: Path
) -> None:
    """JobFiles.result_head (the job page's preview): the local file itself, or
    at most ``limit`` bytes of the object, with the whole size."""
    from aiouws.jobfiles import JobFiles
    from aiouws.models import Job, JobResult
    from aiouws.phases import Phase

    job_id_ = job_id()
    outputs = results.outputs(job_id_, scratch(results, tmp_path, job_id_))
    chunk = os.urandom(MIB)
    with outputs.open("result.vot", VOTABLE) as out:
        for _ in range(3):
            out.write(chunk)
    job = Job(
        job_id=job_id_,
        kind="tap",
        phase=Phase.COMPLETED,
        creation_time=datetime.now(UTC),
        results=(JobResult(id="result", file_name="result.vot", media_type=VOTABLE),),
    )
    files = JobFiles(results, {}, redirect=True)
    head = await files.result_head(job, "result", 100_000)
    assert head.file_name == "result.vot" and head.media_type == VOTABLE
    if isinstance(results, LocalStore):
        assert head.path is not None and head.path.stat().st_size == 3 * MIB
        assert head.data == b""
    else:
        assert head.path is None
        assert head.data == chunk[:100_000]
        assert head.size == 3 * MIB

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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


async def test_a_head_of_a_streamed_result_reads_nothing_of_the_object(
    s3: S3Server, tmp_path: Path, aiohttp_client: Any
) -> None:
    """HEAD of a result streamed through the server (``results_delivery =
    stream``) answers its headers without pulling the object from the store:
    a HEAD of a 20 MiB result must not cost 20 MiB of transfer."""
    from aiohttp import web

    from aiouws.http.handlers import _send

    results = S3Results(s3_spec(s3, tmp_path))
    job = job_id()
    outputs = results.outputs(job, scratch(results, tmp_path, job))
    with outputs.open("result.vot", VOTABLE) as out:
        for _ in range(20):
            out.write(os.urandom(MIB))
    pulled: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        served = await results.serve(job, "result.vot", VOTABLE, redirect=False)
        assert served is not None and served.chunks is not None
        chunks = served.chunks

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                pulled.append(len(chunk))
                yield chunk

        return await _send(request, replace(served, chunks=counted()), "gone")

    app = web.Application()
    app.router.add_get("/result", handler)
    client = await aiohttp_client(app)
    resp = await client.head("/result")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == VOTABLE
    assert int(resp.headers["Content-Length"]) == 20 * MIB
    assert sum(pulled) == 0
    resp = await client.get("/result")
    assert len(await resp.read()) == 20 * MIB
    assert sum(pulled) == 20 * MIB


class _SlowProxy:
    """A TCP proxy in front of an S3 server that holds every request ``delay``
    seconds (a slow object store), on a loop of its own thread."""

    def __init__(self, target: str, delay: float) -> None:
        import threading

        host, _, port = target.removeprefix("http://").partition(":")
        self._target = (host, int(port))
        self.delay = delay
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0)
        )
        self.endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    async def _client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, slow: bool
        ) -> None:
            try:
                while data := await src.read(65536):
                    if slow:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(
            pipe(reader, up_writer, True), pipe(up_reader, writer, False)
        )

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def test_a_failing_inline_job_never_blocks_the_servers_event_loop(
    s3: S3Server, tmp_path: Path
) -> None:
    """An inline lane runs jobs on the server's event loop: when a job fails,
    writing its error detail to a slow object store (each request held 0.5 s)
    must not stall the loop (every other request of the server waits)."""
    from aiouws.contract import Done, Run
    from aiouws.runner import Executor

    proxy = _SlowProxy(s3.endpoint, 0.5)
    try:
        spec = replace(s3_spec(s3, tmp_path), endpoint=proxy.endpoint)
        events: list[object] = []

        async def failing(ctx: Any) -> None:
            raise RuntimeError("the query failed")

        executor = Executor(failing, events.append, chdir=False)
        job = job_id()
        loop = asyncio.get_running_loop()
        lag = 0.0

        async def ticker() -> None:
            nonlocal lag
            while True:
                before = loop.time()
                await asyncio.sleep(0.01)
                lag = max(lag, loop.time() - before - 0.01)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        executor.start(
            Run(
                job_id=job,
                workdir=str(tmp_path / job),
                parameters=(),
                execution_duration=0,
                owner=None,
                store=spec.as_message(),
            )
        )
        for _ in range(300):
            if any(isinstance(e, Done) for e in events):
                break
            await asyncio.sleep(0.05)
        ticking.cancel()
        (done,) = [e for e in events if isinstance(e, Done)]
        assert done.message == "the query failed"
        assert s3.keys(f"{spec.prefix}/{job}/") == [f"{spec.prefix}/{job}/error.txt"]
        assert lag < 0.3, f"the event loop stalled {lag:.2f} s"
    finally:
        proxy.close()


async def test_a_failed_tap_query_writes_its_error_document_off_the_loop(
    s3: S3Server, tmp_path: Path
) -> None:
    """TAP's fast lane runs queries on the server's loop: the DALI error
    document of a failed query goes to a slow object store (each request held
    0.5 s) without stalling the loop."""
    from aiouws.jobapi import JobContext
    from taprunner.errors import TapError
    from taprunner.query.job import execute
    from taprunner.settings import TapSettings

    proxy = _SlowProxy(s3.endpoint, 0.5)
    try:
        spec = replace(s3_spec(s3, tmp_path), endpoint=proxy.endpoint)
        job = job_id()
        ctx = JobContext(
            job_id=job,
            workdir=tmp_path,
            parameters=(("lang", "ADQL", False),),  # no QUERY: a usage error
            owner=None,
            execution_duration=0,
            emit=lambda _message: None,
            outputs=job_outputs(spec, job, tmp_path),
        )
        loop = asyncio.get_running_loop()
        lag = 0.0

        async def ticker() -> None:
            nonlocal lag
            while True:
                before = loop.time()
                await asyncio.sleep(0.01)
                lag = max(lag, loop.time() - before - 0.01)

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        with pytest.raises(TapError):
            await execute(ctx, None, None, TapSettings())  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the ticker wakes: a stall is measured
        ticking.cancel()
        assert s3.keys(f"{spec.prefix}/{job}/") == [f"{spec.prefix}/{job}/error.vot"]
        assert lag < 0.3, f"the event loop stalled {lag:.2f} s"
    finally:
        proxy.close()


async def test_the_destruction_timer_outlives_an_unreachable_object_store(
    s3: S3Server, store: JobStore, tmp_path: Path
) -> None:
    """A job due for destruction while the object store cannot be reached: its
    row goes (the sweep removes its files later) and the timer runs on; it
    must not die, for a dead side task stops the whole supervisor."""
    from aiouws.execution.reaper import DestructionTimer

    spec = StoreSpec(
        kind="s3",
        bucket="b",
        endpoint="http://127.0.0.1:9",  # nothing listens on the discard port
        region="us-east-1",
        credentials_file=str(s3.credentials_file(tmp_path)),
    )
    due = replace(new_job(), destruction_time=datetime.now(UTC) - timedelta(seconds=1))
    await store.create(due)
    timer = DestructionTimer(store, S3Results(spec), None, max_sleep=0.2)
    running = asyncio.create_task(timer.run())
    try:
        started = time.monotonic()
        while time.monotonic() - started < 60:
            if running.done() or not await store.existing_ids([due.job_id]):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(4)  # a second pass meets the store's failure too
        assert not running.done(), running.exception()
        assert await store.existing_ids([due.job_id]) == set()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_delete_of_a_job_succeeds_while_the_object_store_is_away(
    settings: Settings, aiohttp_client: Any, tmp_path: Path
) -> None:
    """DELETE removes the job (its row) even when its files cannot be removed
    now: the client gets its answer, not a 503 for a job that is gone
    already, and the sweep removes the files later."""
    from aiouws.demo import DEMO_KIND
    from aiouws.http.app import create_app

    credentials = tmp_path / "credentials.toml"
    credentials.write_text('access_key_id = "k"\nsecret_access_key = "s"\n')
    away = replace(
        settings,
        results_store="s3",
        results_bucket="b",
        results_endpoint="http://127.0.0.1:9",  # nothing listens there
        results_region="us-east-1",
        results_credentials_file=credentials,
    )
    client = await aiohttp_client(create_app(away, [DEMO_KIND]))
    resp = await client.post("/jobs/demo", data={}, allow_redirects=False)
    assert resp.status == 303
    job = resp.headers["Location"].rsplit("/", 1)[1]
    resp = await client.delete(f"/jobs/demo/{job}", allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert (await client.get(f"/jobs/demo/{job}")).status == 404

"""The results store when things go wrong or slow: HEAD of a streamed result,
an object store that is slow (the event loop of a server running jobs inline
must not wait for it) or unreachable (destruction and DELETE go on; the sweep
removes the files later). Real moto S3 server, real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from s3kit import S3Server
from test_results_store import job_id, new_job, s3, s3_spec, scratch

from aiouws.config import Settings
from aiouws.results import StoreSpec, job_outputs
from aiouws.results.s3 import S3Results
from aiouws.storage.store import JobStore

__all__ = ["s3"]  # the module's S3 server fixture, shared

VOTABLE = "application/x-votable+xml"
MIB = 1024 * 1024


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

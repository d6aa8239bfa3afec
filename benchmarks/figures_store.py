"""The results store: a big BINARY2 result, submission to downloaded, through
S3-compatible object storage (runner → multipart upload, GET → 303 → presigned
URL) next to the local store and ``psql COPY``, in the same run.

The object store is moto's S3 server (``python -m moto.server``, a separate
process on this machine: Python, so a floor of sorts rather than what MinIO or
AWS would give). A second server on the benchmark's database uses it. Both
servers claim any queued job, and a job run by the other server would land in
the other store, so while one server's job runs the other server's processes
(and its runners, never the database) are stopped with SIGSTOP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import boto3
from figures_bulk import copy_seconds
from figures_latency import Bench
from live import HOST, LiveServer, descendants, free_port
from report import Figure, Target, median, summary

__all__ = ["store_figures"]

COLUMNS = "id, ra, dec, mag, name"
BUCKET = "bench-results"


def _python_tree(pid: int) -> list[int]:
    """A server process and its Python descendants (workers, runners): never the
    database's processes."""
    found = [pid]
    for child in descendants([pid]):
        with contextlib.suppress(OSError):
            if b"python" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]:
                found.append(child)
    return found


@contextlib.contextmanager
def _paused(pid: int) -> Iterator[None]:
    """SIGSTOP the server ``pid`` (and its workers and runners) meanwhile."""
    pids = _python_tree(pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGCONT)


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    """moto's S3 server in its own process, with the bucket; its endpoint."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://{HOST}:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


async def _job(session: aiohttp.ClientSession, tap: str, rows: int) -> dict[str, float]:
    """Submission to downloaded (redirects followed), with the split."""
    start = time.perf_counter()
    form = {
        "LANG": "ADQL",
        "QUERY": f"SELECT {COLUMNS} FROM demo.stars",
        "MAXREC": str(2 * rows),
        "RESPONSEFORMAT": "votable",
        "PHASE": "RUN",
    }
    async with session.post(f"{tap}/async", data=form, allow_redirects=False) as r:
        job_url = r.headers["Location"]
    while True:
        async with session.get(f"{job_url}?WAIT=30&PHASE=EXECUTING") as r:
            await r.read()
        async with session.get(f"{job_url}/phase") as r:
            phase = (await r.text()).strip()
        if phase not in ("QUEUED", "EXECUTING", "PENDING"):
            break
    done = time.perf_counter()
    if phase != "COMPLETED":
        raise RuntimeError(f"job {job_url} ended {phase}")
    nbytes = 0
    redirected = False
    async with session.get(f"{job_url}/results/result") as r:
        if r.status != 200:
            raise RuntimeError(f"result of {job_url}: {r.status}")
        redirected = bool(r.history)
        async for chunk in r.content.iter_chunked(1 << 20):
            nbytes += len(chunk)
    end = time.perf_counter()
    async with session.delete(job_url, allow_redirects=False) as r:
        await r.read()
    return {
        "total": end - start,
        "execute": done - start,
        "download": end - done,
        "bytes": nbytes,
        "redirected": float(redirected),
    }


def _upload_seconds(endpoint: str, nbytes: int) -> float:
    """The object store's own floor: ``nbytes`` written as a result is (obstore's
    multipart writer, the runner's part size and concurrency), timed."""
    import obstore
    from obstore.store import S3Store

    from aiouws.results.s3 import PART_BYTES, PARTS_IN_FLIGHT

    store = S3Store(
        BUCKET,
        config={
            "endpoint": endpoint,
            "region": "us-east-1",
            "access_key_id": "bench",
            "secret_access_key": "bench",
        },
        client_options={"allow_http": True},
    )
    chunk = os.urandom(4 * 1024 * 1024)
    start = time.perf_counter()
    with obstore.open_writer(
        store, "floor/object", buffer_size=PART_BYTES, max_concurrency=PARTS_IN_FLIGHT
    ) as out:
        for _ in range(nbytes // len(chunk) + 1):
            out.write(chunk)
    seconds = time.perf_counter() - start
    obstore.delete(store, "floor/object")
    return seconds


async def store_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    reps = bench.reps(3, 1)
    with tempfile.TemporaryDirectory(prefix="aiouws-bench-s3-") as tmp, _moto() as url:
        credentials = Path(tmp) / "credentials.toml"
        credentials.write_text('access_key_id = "bench"\nsecret_access_key = "bench"\n')
        s3_server = LiveServer(
            rows=0,
            dsn=bench.dsn,
            workers=1,
            env={
                "AIOUWS_RESULTS_STORE": "s3",
                "AIOUWS_RESULTS_BUCKET": BUCKET,
                "AIOUWS_RESULTS_ENDPOINT": url,
                "AIOUWS_RESULTS_REGION": "us-east-1",
                "AIOUWS_RESULTS_CREDENTIALS_FILE": str(credentials),
            },
        )
        s3_server.start()
        try:
            await s3_server.wait_ready(timeout=300)
            copies: list[float] = []
            local: list[dict[str, float]] = []
            s3: list[dict[str, float]] = []
            # COPY, local, S3 alternate: the VM's speed drifts over a minute.
            for _ in range(reps):
                copies.append(
                    await asyncio.to_thread(copy_seconds, bench.dsn, "demo.stars")
                )
                with _paused(s3_server.pid):
                    local.append(await _job(session, bench.tap, bench.rows))
                with _paused(bench.server_pid):
                    s3.append(await _job(session, s3_server.tap, bench.rows))
            nbytes = int(s3[0]["bytes"])
            uploads = [
                await asyncio.to_thread(_upload_seconds, url, nbytes)
                for _ in range(reps)
            ]
        finally:
            s3_server.stop()
    floor = median(copies)
    if not all(r["redirected"] for r in s3):
        raise RuntimeError("the S3 server's results were not redirected")
    return [
        Figure(
            name=f"5s floor: psql COPY {bench.rows:,} rows (store runs)",
            value=floor,
            unit="s",
            details={"samples_s": summary(copies)},
        ),
        Figure(
            name="5s floor: multipart PUT of the result's bytes to the store",
            value=median(uploads),
            unit="s",
            details={"samples_s": summary(uploads), "bytes": nbytes},
        ),
        Figure(
            name=f"5s {bench.rows:,} rows BINARY2, local store",
            value=median([r["total"] for r in local]),
            unit="s",
            target=Target(2.5, of_floor=True),
            floor=floor,
            floor_name="COPY",
            details={k: summary([r[k] for r in local]) for k in local[0]},
        ),
        Figure(
            name=f"5s {bench.rows:,} rows BINARY2, S3 store (303, presigned)",
            value=median([r["total"] for r in s3]),
            unit="s",
            floor=floor,
            floor_name="COPY",
            details={k: summary([r[k] for r in s3]) for k in s3[0]},
        ),
    ]

"""A minimal UWS/TAP client on aiohttp, timing each step of an async job."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from rawhttp import RawConnection

__all__ = [
    "FINAL",
    "JobTiming",
    "TINY_QUERY",
    "create_job",
    "fetch",
    "run_job",
    "run_job_raw",
    "wait_final",
]

TINY_QUERY = "SELECT TOP 10 id, ra, dec, mag, name FROM demo.stars"
FINAL = frozenset({"COMPLETED", "ERROR", "ABORTED"})
_PHASE = re.compile(rb"<uws:phase>\s*([A-Z]+)\s*</uws:phase>")


@dataclass(frozen=True, slots=True)
class JobTiming:
    """Seconds spent creating, waiting for and downloading one job; result size."""

    create: float
    wait: float
    fetch: float
    nbytes: int

    @property
    def total(self) -> float:
        return self.create + self.wait + self.fetch


def phase_of(document: bytes) -> str:
    match = _PHASE.search(document)
    if match is None:
        raise RuntimeError(f"no phase in job document: {document[:300]!r}")
    return match.group(1).decode()


async def create_job(
    session: aiohttp.ClientSession,
    tap: str,
    query: str,
    *,
    run: bool = True,
    **extra: str,
) -> str:
    """POST a TAP job (``PHASE=RUN`` when ``run``); return the 303 Location."""
    data = {"LANG": "ADQL", "QUERY": query, **extra}
    if run:
        data["PHASE"] = "RUN"
    async with session.post(f"{tap}/async", data=data, allow_redirects=False) as resp:
        await resp.read()
        if resp.status != 303:
            raise RuntimeError(f"job creation answered {resp.status}")
        return resp.headers["Location"]


async def wait_final(session: aiohttp.ClientSession, job_url: str) -> str:
    """Block with ``WAIT=-1`` until the job is in a final phase; return the phase."""
    while True:
        async with session.get(job_url, params={"WAIT": "-1"}) as resp:
            phase = phase_of(await resp.read())
        if phase in FINAL:
            return phase


async def fetch(session: aiohttp.ClientSession, url: str) -> int:
    """Download ``url`` to nowhere (1 MiB chunks); return the byte count."""
    nbytes = 0
    async with session.get(url) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {url} answered {resp.status}")
        async for chunk in resp.content.iter_chunked(1 << 20):
            nbytes += len(chunk)
    return nbytes


async def run_job(
    session: aiohttp.ClientSession, tap: str, query: str, **extra: str
) -> JobTiming:
    """Create+run, wait, fetch ``results/result``; raise unless COMPLETED."""
    start = time.perf_counter()
    job_url = await create_job(session, tap, query, **extra)
    created = time.perf_counter()
    phase = await wait_final(session, job_url)
    done = time.perf_counter()
    if phase != "COMPLETED":
        raise RuntimeError(f"job {job_url} ended {phase}")
    nbytes = await fetch(session, f"{job_url}/results/result")
    return JobTiming(
        create=created - start,
        wait=done - created,
        fetch=time.perf_counter() - done,
        nbytes=nbytes,
    )


async def run_job_raw(conn: RawConnection, tap_path: str, query: str) -> float:
    """:func:`run_job` on the lean client (``tap_path``: the TAP service's path);
    seconds from creation to the downloaded result."""
    start = time.perf_counter()
    form = {"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"}
    created = await conn.post_form(f"{tap_path}/async", form)
    if created.status != 303:
        raise RuntimeError(f"job creation answered {created.status}")
    job_path = urlsplit(created.headers["location"]).path
    while True:
        reply = await conn.get(f"{job_path}?WAIT=-1")
        if phase_of(reply.body) in FINAL:
            break
    if phase_of(reply.body) != "COMPLETED":
        raise RuntimeError(f"job {job_path} ended {phase_of(reply.body)}")
    result = await conn.get(f"{job_path}/results/result")
    if result.status != 200 or not result.body:
        raise RuntimeError(f"GET {job_path}/results/result answered {result.status}")
    return time.perf_counter() - start

"""The full client of the throughput figure, in a process of its own.

What an independent client does with each tiny job: ``POST {tap}/async`` with
``PHASE=RUN`` and the query, follow the 303 to the job, ``GET`` the job with
``WAIT=-1`` until it is in a final phase, ``GET`` the result and parse it with
``astropy.io.votable`` (every row read). ``--clients`` aiohttp sessions run
concurrently on one event loop. Run as ``python fullclient.py TAP --clients N``:
it imports and warms up, prints ``ready``, then for every line ``go JOBS`` on
its standard input runs that many jobs and prints one JSON line: ``rate``
(jobs/s), ``cpu`` (this process's CPU seconds for the round), ``latencies``
(seconds per job), ``rows`` (rows parsed); ``quit`` ends it. Its CPU is the
client's; it shares no event loop with the measuring process.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time

import aiohttp
from astropy.io import votable

FINAL = frozenset({"COMPLETED", "ERROR", "ABORTED"})
TINY_QUERY = "SELECT TOP 10 id, ra, dec, mag, name FROM demo.stars"


def _phase(document: bytes) -> str:
    start = document.find(b"<uws:phase>")
    end = document.find(b"</uws:phase>", start)
    if start < 0 or end < 0:
        raise RuntimeError(f"no phase in job document: {document[:300]!r}")
    return document[start + len(b"<uws:phase>") : end].strip().decode()


def parse_votable(data: bytes) -> int:
    """Rows of the VOTable ``data``, parsed by astropy (every value read)."""
    table = votable.parse_single_table(io.BytesIO(data)).to_table()
    return len(table)


async def run_job(session: aiohttp.ClientSession, tap: str, query: str) -> int:
    """One job, as an independent client runs it; the rows of its result."""
    form = {"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"}
    async with session.post(f"{tap}/async", data=form) as resp:  # follows the 303
        document = await resp.read()
        if resp.status != 200 or len(resp.history) != 1:
            raise RuntimeError(f"job creation answered {resp.status}")
        job_url = str(resp.url)
    phase = _phase(document)
    while phase not in FINAL:
        async with session.get(job_url, params={"WAIT": "-1"}) as resp:
            phase = _phase(await resp.read())
    if phase != "COMPLETED":
        raise RuntimeError(f"job {job_url} ended {phase}")
    async with session.get(f"{job_url}/results/result") as resp:
        data = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {job_url}/results/result answered {resp.status}")
    return parse_votable(data)


async def run_round(
    sessions: list[aiohttp.ClientSession], tap: str, jobs: int
) -> dict[str, object]:
    left = jobs
    latencies: list[float] = []
    rows = 0

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal left, rows
        while left > 0:
            left -= 1
            start = time.perf_counter()
            rows += await run_job(session, tap, TINY_QUERY)
            latencies.append(time.perf_counter() - start)

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(client(s) for s in sessions))
    elapsed = time.perf_counter() - start
    return {
        "rate": jobs / elapsed,
        "seconds": elapsed,
        "cpu": time.process_time() - cpu,
        "latencies": latencies,
        "rows": rows,
    }


async def main(tap: str, clients: int) -> None:
    loop = asyncio.get_running_loop()
    sessions = [aiohttp.ClientSession() for _ in range(clients)]
    try:
        await run_round(sessions, tap, 2 * clients)  # warm-up: connections, imports
        print("ready", flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                return
            result = await run_round(sessions, tap, int(line[1]))
            print(json.dumps(result), flush=True)
    finally:
        for session in sessions:
            await session.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tap", help="the TAP service's URL")
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.tap, args.clients))

"""The cost of single UWS requests against a live server: create, GET, WAIT wake-up.

Runs on its own (``python benchmarks/bench_uws_requests.py``): starts a server with
an embedded database (see ``live.LiveServer``), then times, one request at a time
on a keep-alive connection, medians over ``--n`` repetitions of:
creating a PENDING job (POST, 303), reading a job document (GET), and the delay
from an ABORT's answer to the answer of a client blocked in ``WAIT`` on that job.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live import LiveServer  # noqa: E402

QUERY = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}


async def measure(tap: str, n: int) -> dict[str, float]:
    create: list[float] = []
    read: list[float] = []
    wake: list[float] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            started = time.perf_counter()
            async with session.post(
                f"{tap}/async", data=QUERY, allow_redirects=False
            ) as resp:
                job = resp.headers["Location"]
            create.append(time.perf_counter() - started)
            started = time.perf_counter()
            async with session.get(job) as resp:
                await resp.read()
            read.append(time.perf_counter() - started)
            async with aiohttp.ClientSession() as other:
                waiter = asyncio.create_task(other.get(job, params={"WAIT": "30"}))
                await asyncio.sleep(0.02)
                async with session.post(
                    f"{job}/phase", data={"PHASE": "ABORT"}, allow_redirects=False
                ) as resp:
                    answered = time.perf_counter()
                woken = await waiter
                wake.append(time.perf_counter() - answered)
                woken.release()
    return {
        name: statistics.median(values) * 1000
        for name, values in (("create", create), ("get", read), ("wake", wake))
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="repetitions")
    args = parser.parse_args()
    server = LiveServer(rows=1000)
    server.start()
    try:
        await server.wait_ready(timeout=300)
        figures = await measure(server.tap, args.n)
    finally:
        server.stop()
    for name, value in figures.items():
        print(f"{name:8} median {value:6.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())

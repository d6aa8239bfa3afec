"""Throughput of tiny jobs with two hosts against one host, in the same run.

``python benchmarks/bench_hosts.py [--jobs N] [--rounds R] [--concurrency C]``
starts a throwaway PostgreSQL cluster (fsync off) and ``python -m taprunner
serve`` processes on it, each with a data directory of its own. Each round
submits N tiny jobs (PHASE=RUN, C requests in flight) and times them from the
first submission until the last is in a final phase (read from the job table
every 10 ms): the ``demo`` kind with seconds=0 (runner lane: a claim each) and
TAP ``SELECT TOP 1`` (the fast lane). Rounds alternate one host (A alone) and
two hosts (A and B, submissions alternating), B being started and stopped
between them, so that both see the same machine. Prints jobs/s per round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from aiouws.storage.pgcluster import EmbeddedCluster  # noqa: E402
from benchmarks.live import free_port  # noqa: E402

KINDS = {
    "demo": ("/jobs/demo", {"seconds": "0"}),
    "tap": ("/tap/async", {"LANG": "ADQL", "QUERY": "SELECT TOP 1 id FROM demo.stars"}),
}


def start(dsn: str, data: Path, demo_rows: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    demo = ["--demo-rows", str(demo_rows)] if demo_rows else ["--no-demo"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AIOUWS_LOG_LEVEL": "WARNING",
        "AIOUWS_MAX_QUEUED_PER_OWNER": "100000",  # all anonymous: one owner
        "AIOUWS_MAX_EXECUTING_PER_OWNER": "100000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "taprunner", "--dsn", dsn, "--data-dir", str(data)]
        + ["serve", "--port", str(port), *demo],
        stdout=(data / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            import urllib.request

            with urllib.request.urlopen(url + "/tap/availability", timeout=2) as r:
                if b"true" in r.read():
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((data / "server.log").read_text()[-3000:])
        time.sleep(0.2)


async def one_round(
    dsn: str, urls: list[str], kind: str, jobs: int, concurrency: int
) -> float:
    path, params = KINDS[kind]
    conn = await asyncpg.connect(dsn)
    await conn.execute("DELETE FROM uws.job")
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def submit(i: int) -> None:
            async with gate:
                url = urls[i % len(urls)] + path
                data = {**params, "PHASE": "RUN"}
                async with http.post(url, data=data, allow_redirects=False) as resp:
                    assert resp.status == 303, await resp.text()

        started = time.perf_counter()
        await asyncio.gather(*(submit(i) for i in range(jobs)))
        while True:
            done = await conn.fetchval(
                "SELECT count(*) FROM uws.job WHERE phase IN"
                " ('COMPLETED', 'ERROR', 'ABORTED')"
            )
            if done >= jobs:
                break
            await asyncio.sleep(0.01)
        took = time.perf_counter() - started
    bad = await conn.fetchval("SELECT count(*) FROM uws.job WHERE phase <> 'COMPLETED'")
    await conn.close()
    assert bad == 0, f"{bad} jobs did not complete"
    return jobs / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="aiouws-bench-hosts-"))
    root.chmod(0o755)
    cluster = EmbeddedCluster(
        root / "pg", port=free_port(), fast_unsafe=True, database="bench"
    )
    dsn = cluster.ensure_running()
    results: dict[tuple[str, int], list[float]] = {}
    a = b = None
    try:
        a, url_a = start(dsn, root / "a", demo_rows=1000)
        for _ in range(args.rounds):
            for hosts in (1, 2):
                if hosts == 2:
                    b, url_b = start(dsn, root / "b", demo_rows=0)
                urls = [url_a] if hosts == 1 else [url_a, url_b]
                for kind in KINDS:
                    rate = asyncio.run(
                        one_round(dsn, urls, kind, args.jobs, args.concurrency)
                    )
                    results.setdefault((kind, hosts), []).append(rate)
                    print(f"{kind:5} {hosts} host(s): {rate:7.1f} jobs/s", flush=True)
                if b is not None:
                    b.terminate()
                    b.wait(30)
                    b = None
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(30)
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{args.jobs} jobs a round, {args.concurrency} in flight; jobs/s:")
    for (kind, hosts), rates in sorted(results.items()):
        spread = f"{min(rates):.1f}-{max(rates):.1f}"
        print(
            f"  {kind:5} {hosts} host(s): median {statistics.median(rates):.1f}"
            f" (rounds: {spread})"
        )


if __name__ == "__main__":
    main()

"""Micro-benchmark of the TAP result writers on 1M rows (id, ra, dec, mag, name).

Run by hand: ``python benchmarks/bench_encoders.py [--dsn DSN] [--rows N]``. Without
``--dsn`` a throwaway cluster is started (port 5544) and stopped at the end. Prints
rows/s, the ratio to ``psql COPY ... TO STDOUT > /dev/null`` and the CPU seconds of
this process (steadier than wall time on a busy machine) for each path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from taprunner.formats.fields import field_for_pg_type
from taprunner.formats.pgcopy import copy_csv
from taprunner.formats.votable import VOTableEncoder
from taprunner.query.heap import keep_heap_pad

QUERY = "SELECT id, ra, dec, mag, name FROM bench"


async def _setup(conn: asyncpg.Connection, rows: int) -> None:
    await conn.execute("DROP TABLE IF EXISTS bench")
    await conn.execute(
        "CREATE TABLE bench AS SELECT i::bigint AS id, random()*360 AS ra,"
        " random()*180-90 AS dec, (random()*20)::real AS mag, 'obj_' || i AS name"
        f" FROM generate_series(1, {rows}) i"
    )
    await conn.execute("VACUUM ANALYZE bench")


def _psql_copy(dsn: str) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            ["psql", dsn, "-c", f"COPY ({QUERY}) TO STDOUT"], stdout=devnull, check=True
        )
    return time.perf_counter() - start


async def _generic(conn: asyncpg.Connection, out: str) -> int:
    stmt = await conn.prepare(QUERY)
    fields = [field_for_pg_type(a.name, a.type.name) for a in stmt.get_attributes()]
    encoder = VOTableEncoder(fields)
    keep_heap_pad()  # as the runner does for a large result
    count = 0
    with open(out, "wb") as sink:  # noqa: ASYNC230 - the runner writes synchronously too
        sink.write(encoder.header())
        async with conn.transaction():
            cursor = await stmt.cursor()
            while rows := await cursor.fetch(10000):
                sink.write(encoder.encode(rows))
                count += len(rows)
        sink.write(encoder.footer())
    return count


async def _csv(conn: asyncpg.Connection, out: str) -> int:
    with open(out, "wb") as sink:  # noqa: ASYNC230 - the runner writes synchronously too

        async def write(chunk: bytes) -> None:
            sink.write(chunk)

        return await copy_csv(conn, QUERY, write)


async def _timed(label: str, run: Callable[[], Awaitable[int]], base: float) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    count = await run()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:10s} {took:6.2f} s {count / took:10.0f} rows/s "
        f"{took / base:5.2f}x psql  CPU {cpu:5.2f} s  peak RSS so far {rss:.0f} MB"
    )


async def main(dsn: str, rows: int, only: str | None) -> None:
    conn = await asyncpg.connect(dsn)
    await _setup(conn, rows)
    base = min(_psql_copy(dsn) for _ in range(3))
    print(f"psql COPY  {base:6.2f} s {rows / base:10.0f} rows/s")
    out = tempfile.mktemp(suffix=".vot")
    runs: dict[str, Callable[[], Awaitable[int]]] = {
        "csv": lambda: _csv(conn, out),
        "generic": lambda: _generic(conn, out),
    }
    for label, run in runs.items():
        if only is None or label == only:
            await _timed(label, run, base)
    os.unlink(out)
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["csv", "generic"])
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(main(args.dsn, args.rows, args.only))
    else:
        from aiouws.storage.pgcluster import EmbeddedCluster

        root = Path(tempfile.mkdtemp())
        os.chmod(root, 0o755)
        cluster = EmbeddedCluster(root, port=5544, fast_unsafe=True)
        try:
            asyncio.run(main(cluster.ensure_running(), args.rows, args.only))
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

"""Micro-benchmark: TABLEDATA of timestamps and arrays, by the encoder (the cursor
path) and by the text COPY path (taprunner/query/copytext.py), A/B alternating.

Run by hand: ``python benchmarks/bench_tdcopy_types.py [--dsn DSN] [--rows N]
[--kind timestamp|array|point] [--rounds R]``. Without ``--dsn`` a throwaway
cluster is started (port 5545) and stopped at the end. For each round and path
it prints this process's CPU seconds (``time.process_time``: the runner's share),
the PostgreSQL backend's (utime + stime from /proc, same host) and the wall time,
then the medians, the spread and the ratio of the runner's CPU; the floor is
``psql COPY (query) TO STDOUT > /dev/null`` (wall), measured between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import asyncpg

from taprunner.formats.fields import field_for_pg_type
from taprunner.formats.registry import DataPath
from taprunner.query.bytelimits import ResultLimits
from taprunner.query.copytext import stream_transcoded
from taprunner.query.streaming import stream_cursor
from taprunner.request import FORMATS, TapRequest

TD = FORMATS["votable/td"]
ENCODER = replace(TD, paths=TD.paths - {DataPath.COPY_TEXT})
LIMITS = ResultLimits(4 * 1024 * 1024, 16 * 1024**3)
COLUMNS = {
    "timestamp": "timestamp '2020-01-01' + i * interval '1.234567 s' AS ts,"
    " i * 0.001::float8 AS x",
    "array": "ARRAY[i, i * 0.5, -i * 0.25]::float8[] AS a, i % 7 = 0 AS b",
    "point": "ARRAY[i * 3.7e-4, i * 1.3e-4 - 90]::float8[] AS p",
}


async def _setup(conn: asyncpg.Connection, rows: int, kind: str) -> str:
    await conn.execute("DROP TABLE IF EXISTS bench_td")
    await conn.execute(
        f"CREATE TABLE bench_td AS SELECT i::bigint AS id, {COLUMNS[kind]}"
        f" FROM generate_series(1, {rows}) i"
    )
    await conn.execute("VACUUM ANALYZE bench_td")
    return "SELECT * FROM bench_td"


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run(conn: asyncpg.Connection, sql: str, copy: bool) -> int:
    written = 0

    async def sink(data: bytes) -> None:
        nonlocal written
        written += len(data)

    request = TapRequest(query=sql, maxrec=10**9, format=TD if copy else ENCODER)
    async with conn.transaction(readonly=True):
        statement = await conn.prepare(sql)
        attributes = statement.get_attributes()
        fields = [field_for_pg_type(a.name, a.type.name) for a in attributes]
        if copy:
            names = [a.name for a in attributes]
            types = [a.type.name for a in attributes]
            await stream_transcoded(
                conn, sql, request, fields, names, types, sink, 600, LIMITS
            )
        else:
            await stream_cursor(statement, request, fields, sink, 600, LIMITS)
    return written


def _psql_copy(dsn: str, sql: str) -> float:
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            ["psql", dsn, "-c", f"COPY ({sql}) TO STDOUT"], stdout=devnull, check=True
        )
    return time.perf_counter() - start


async def main(dsn: str, rows: int, kind: str, rounds: int) -> None:
    conn = await asyncpg.connect(dsn)
    sql = await _setup(conn, rows, kind)
    pid = conn.get_server_pid()
    figures: dict[str, list[tuple[float, float, float]]] = {"encoder": [], "copy": []}
    floors = []
    for round_ in range(rounds):
        for label in ("encoder", "copy"):
            cpu, backend, wall = (
                time.process_time(),
                _backend_cpu(pid),
                time.perf_counter(),
            )
            size = await _run(conn, sql, label == "copy")
            figure = (
                time.process_time() - cpu,
                _backend_cpu(pid) - backend,
                time.perf_counter() - wall,
            )
            figures[label].append(figure)
            print(
                f"round {round_} {label:8s} runner CPU {figure[0]:6.3f} s"
                f"  PostgreSQL CPU {figure[1]:5.2f} s  wall {figure[2]:6.2f} s"
                f"  {size} bytes"
            )
        floors.append(_psql_copy(dsn, sql))
    print(f"psql COPY floor (wall): median {statistics.median(floors):.2f} s")
    for label, values in figures.items():
        runner = [v[0] for v in values]
        print(
            f"{label:8s} runner CPU median {statistics.median(runner):.3f} s"
            f" ({min(runner):.3f}-{max(runner):.3f}), PostgreSQL CPU median"
            f" {statistics.median(v[1] for v in values):.2f} s, wall median"
            f" {statistics.median(v[2] for v in values):.2f} s"
        )
    ratio = statistics.median(v[0] for v in figures["encoder"]) / statistics.median(
        v[0] for v in figures["copy"]
    )
    print(f"runner CPU, encoder / copy: {ratio:.1f}; load {os.getloadavg()}")
    await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=sorted(COLUMNS), default="timestamp")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(main(args.dsn, args.rows, args.kind, args.rounds))
    else:
        from aiouws.storage.pgcluster import EmbeddedCluster

        root = Path(tempfile.mkdtemp())
        os.chmod(root, 0o755)
        cluster = EmbeddedCluster(root, port=5545, fast_unsafe=True)
        try:
            asyncio.run(
                main(cluster.ensure_running(), args.rows, args.kind, args.rounds)
            )
        finally:
            cluster.stop()
            shutil.rmtree(root, ignore_errors=True)

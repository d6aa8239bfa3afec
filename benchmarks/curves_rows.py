"""The ``rows`` charts of ``scripts/bench --curves`` (``CURVES`` in run.py).

Result time against result rows (10k ... 10M), one series per output format
(async job, submission to downloaded) with ``psql COPY`` of the same rows beside
it (and the same COPY on an open connection: psql's start-up dominates small
sizes), the time as a ratio to psql COPY, and the peak memory of the runner
that ran each job and of the server meanwhile. Each point is the median of
repeated runs; low and high are the smallest and largest run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from client import create_job, fetch, wait_final
from figures_latency import Bench
from live import cpu_seconds, proc_status, runner_pids, server_pids
from report import Curve, Point

__all__ = ["Samples", "row_curves", "source_tables"]

MB = 1024 * 1024
COLUMNS = "id, ra, dec, mag, name"
SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
QUICK_MAX_ROWS = 1_000_000
#: RESPONSEFORMAT and the legend's label, in the order run within each repetition.
FORMATS = (
    ("votable", "BINARY2"),
    ("parquet", "VOParquet"),
    ("csv", "CSV"),
    ("tsv", "TSV"),
    ("votable/td", "TABLEDATA"),
)
COPY = "psql COPY"
COPY_OPEN = "COPY, open connection"
BEFORE = "before the job (any format)"


def _repetitions(bench: Bench, rows: int) -> int:
    if rows <= 100_000:
        return bench.reps(5, 2)
    return bench.reps(3, 1) if rows <= 1_000_000 else bench.reps(2, 1)


# The source tables -------------------------------------------------------------

_CANDIDATES = """
SELECT t.table_name FROM tap_schema.tables AS t
WHERE (SELECT count(DISTINCT k.column_name) FROM tap_schema.columns AS k
       WHERE k.table_name = t.table_name
         AND k.column_name IN ('id', 'ra', 'dec', 'mag', 'name')) = 5
"""
_ESTIMATE = "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)"


async def source_tables(dsn: str, sizes: tuple[int, ...]) -> dict[int, str]:
    """For each size, the smallest published table of demo.stars' columns that
    holds at least that many rows (demo.stars, bench.big of ``--big``, the
    generated catalogues of a kept data directory); sizes without one are left out.
    """
    conn = await asyncpg.connect(dsn)
    try:
        estimates: dict[str, float] = {}
        for record in await conn.fetch(_CANDIDATES):
            name = str(record["table_name"])
            with contextlib.suppress(asyncpg.PostgresError):  # a view, odd names
                estimate = await conn.fetchval(_ESTIMATE, name)
                if estimate is not None:
                    estimates[name] = float(estimate)
        candidates = sorted(estimates, key=estimates.__getitem__)
        found: dict[int, str] = {}
        for rows in sizes:
            for table in candidates:
                have = 0
                # Exact, and bounded by ``rows``: reltuples is only an estimate.
                with contextlib.suppress(asyncpg.PostgresError):
                    have = await conn.fetchval(
                        f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT {rows}) s"
                    )
                if have == rows:
                    found[rows] = table
                    break
        return found
    finally:
        await conn.close()


# Peak memory -------------------------------------------------------------------


def reset_peaks(pids: list[int]) -> bool:
    """Reset each process's VmHWM to its current RSS (``clear_refs`` 5, Linux 4.0+),
    so that the next reading is the peak of what ran since; False if refused."""
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except FileNotFoundError:
            continue  # gone
        except OSError:
            ok = False
    return ok


@dataclass
class PeakMemory:
    """Peak RSS during one job, from VmHWM reset before it: of the server's
    processes (summed), and of the runner that ran the job (the one that used
    the most CPU meanwhile; an idle runner's size says nothing of the job)."""

    server_pid: int
    exact: bool = True
    cpu_before: dict[int, float] = field(default_factory=dict)
    rss_before: dict[int, int] = field(default_factory=dict)
    cpu_used: dict[int, float] = field(default_factory=dict)

    def __enter__(self) -> PeakMemory:
        runners = runner_pids(self.server_pid)
        self.exact = reset_peaks([*server_pids(self.server_pid), *runners])
        self.cpu_before = {pid: cpu_seconds([pid]) for pid in runners}
        self.rss_before = {p: proc_status(p).get("VmRSS", 0) for p in runners}
        return self

    def __exit__(self, *_exc: object) -> None:
        self.cpu_used = {
            pid: cpu_seconds([pid]) - self.cpu_before.get(pid, 0.0)
            for pid in {*self.cpu_before, *runner_pids(self.server_pid)}
        }

    def server_mb(self) -> float:
        pids = server_pids(self.server_pid)
        return sum(proc_status(p).get("VmHWM", 0) for p in pids) / MB

    def runner_mb(self) -> tuple[float, float]:
        """The job's runner's peak and its RSS before the job, MB; NaN when no
        runner worked (the job ran in the server's fast lane)."""
        busiest = max(self.cpu_used, key=self.cpu_used.__getitem__, default=None)
        if busiest is None or self.cpu_used[busiest] <= 0:
            return math.nan, math.nan
        peak = proc_status(busiest).get("VmHWM", 0)
        return peak / MB, self.rss_before.get(busiest, 0) / MB or math.nan


# One measurement -----------------------------------------------------------------


def copy_seconds(dsn: str, table: str, rows: int) -> float:
    """``psql -c "COPY (SELECT ... LIMIT rows) TO STDOUT" > /dev/null``, timed."""
    sql = f"COPY (SELECT {COLUMNS} FROM {table} LIMIT {rows}) TO STDOUT"
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(["psql", dsn, "-X", "-q", "-c", sql], stdout=devnull, check=True)
    return time.perf_counter() - start


async def job_seconds(
    session: aiohttp.ClientSession, bench: Bench, table: str, rows: int, fmt: str
) -> tuple[float, int]:
    """``SELECT TOP rows`` as an async job in ``fmt``: seconds from submission to
    the downloaded result, and its bytes. The job is deleted afterwards."""
    start = time.perf_counter()
    job_url = await create_job(
        session,
        bench.tap,
        f"SELECT TOP {rows} {COLUMNS} FROM {table}",
        MAXREC=str(2 * rows),
        RESPONSEFORMAT=fmt,
    )
    try:
        phase = await wait_final(session, job_url)
        if phase != "COMPLETED":
            raise RuntimeError(f"{fmt} job {job_url} of {rows} rows ended {phase}")
        nbytes = await fetch(session, f"{job_url}/results/result")
        return time.perf_counter() - start, nbytes
    finally:
        async with session.delete(job_url, allow_redirects=False) as resp:
            await resp.read()  # keep the disk clean: 10M rows TABLEDATA is gigabytes


# Result time and memory against rows -----------------------------------------------


@dataclass
class Samples:
    """Per series label: x -> samples (NaN, not measured, left out)."""

    by_label: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, label: str, x: int, value: float) -> None:
        points = self.by_label.setdefault(label, {})
        if not math.isnan(value):
            points.setdefault(x, []).append(value)

    def series(self) -> dict[str, list[Point]]:
        return {
            label: [Point.of(x, s) for x, s in sorted(xs.items()) if s]
            for label, xs in self.by_label.items()
        }


@dataclass
class _RowRuns:
    seconds: Samples = field(default_factory=Samples)
    ratios: Samples = field(default_factory=Samples)
    runner: Samples = field(default_factory=Samples)
    server: Samples = field(default_factory=Samples)
    growth: Samples = field(default_factory=Samples)
    exact: bool = True


async def _copy_open_seconds(conn: asyncpg.Connection, table: str, rows: int) -> float:
    """The same COPY on a connection opened beforehand (no psql start-up)."""

    async def discard(_chunk: bytes) -> None:
        pass

    sql = f"SELECT {COLUMNS} FROM {table} LIMIT {rows}"
    start = time.perf_counter()
    await conn.copy_from_query(sql, output=discard)
    return time.perf_counter() - start


async def _run_rows(
    bench: Bench, session: aiohttp.ClientSession, tables: dict[int, str]
) -> _RowRuns:
    runs = _RowRuns()
    conn = await asyncpg.connect(bench.dsn)
    try:
        for rows, table in tables.items():
            for _ in range(_repetitions(bench, rows)):
                # COPY, then each format: the floor alternates with what it bounds.
                floor = await asyncio.to_thread(copy_seconds, bench.dsn, table, rows)
                runs.seconds.add(COPY, rows, floor)
                opened = await _copy_open_seconds(conn, table, rows)
                runs.seconds.add(COPY_OPEN, rows, opened)
                for fmt, label in FORMATS:
                    with PeakMemory(bench.server_pid) as peak:
                        took, _ = await job_seconds(session, bench, table, rows, fmt)
                    runs.seconds.add(label, rows, took)
                    runs.ratios.add(label, rows, took / floor)
                    runner_peak, runner_before = peak.runner_mb()
                    runs.runner.add(label, rows, runner_peak)
                    runs.runner.add(BEFORE, rows, runner_before)
                    runs.growth.add(label, rows, runner_peak - runner_before)
                    runs.server.add(label, rows, peak.server_mb())
                    runs.exact = runs.exact and peak.exact
            print(f"bench: curves, {rows:,} rows from {table} done", flush=True)
    finally:
        await conn.close()
    return runs


async def row_curves(bench: Bench, session: aiohttp.ClientSession) -> list[Curve]:
    sizes = tuple(s for s in SIZES if not bench.quick or s <= QUICK_MAX_ROWS)
    tables = await source_tables(bench.dsn, sizes)
    await asyncio.sleep(6)  # a table published just now: the runners' cache, 5 s
    runs = await _run_rows(bench, session, tables)
    sources = ", ".join(sorted(set(tables.values())))
    reps = ", ".join(f"{compact_rows(r)} x{_repetitions(bench, r)}" for r in tables)
    common = (
        f"async jobs SELECT TOP n of 5 columns ({sources}), submission to "
        f"downloaded; runs per size: {reps}; bars: smallest..largest"
    )
    missing = [compact_rows(s) for s in sizes if s not in tables]
    if missing:
        common += f"; no table with {', '.join(missing)} rows"
    memory = (
        "peak RSS (VmHWM reset before each job)"
        if runs.exact
        else "VmHWM could not be reset: lifetime peaks"
    )
    return [
        Curve(
            name="result_time_by_rows",
            title="Result time against rows, per format, with psql COPY",
            xlabel="result rows",
            ylabel="seconds (median)",
            series=runs.seconds.series(),
            ylog=True,
            note=common + f"; {COPY} includes starting psql",
        ),
        Curve(
            name="result_ratio_by_rows",
            title="Result time as a multiple of psql COPY of the same rows",
            xlabel="result rows",
            ylabel="job time ÷ psql COPY time (same repetition)",
            series=runs.ratios.series(),
            note=common,
        ),
        Curve(
            name="runner_memory_by_rows",
            title="Runner peak memory against result rows",
            xlabel="result rows",
            ylabel="MB (the runner that ran the job)",
            series=dict(sorted(runs.runner.series().items(), key=_before_last)),
            note=f"{memory} of the runner that ran the job, and its RSS before "
            "it: warm runners keep what earlier jobs imported (pyarrow) and "
            "allocated; the jobs of the result time",
        ),
        Curve(
            name="runner_growth_by_rows",
            title="Runner memory a job adds, against result rows",
            xlabel="result rows",
            ylabel="MB (peak minus RSS before the job)",
            series=runs.growth.series(),
            note=f"{memory}: the runner's peak during the job minus its RSS "
            "before it (what the job itself needed beyond a warm runner's size)",
        ),
        Curve(
            name="server_memory_by_rows",
            title="Server peak memory against result rows",
            xlabel="result rows",
            ylabel="MB (all server processes)",
            series=runs.server.series(),
            note=f"{memory}, summed over the server's processes (workers)",
        ),
    ]


def _before_last(item: tuple[str, list[Point]]) -> bool:
    return item[0] == BEFORE


def compact_rows(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"

"""Bulk figures: large results (BINARY2, CSV, TSV, TABLEDATA, VOParquet; the text
formats async and sync) against the psql COPY floor measured beside each, memory
of the server and its runners meanwhile, and 1,000 simultaneous WAITing clients.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
from client import create_job, fetch, wait_final
from figures_latency import MS, Bench, insert_jobs
from live import ROOT, MemorySampler, proc_status, runner_pids, server_rss
from report import Figure, Target, median, summary

__all__ = ["big_figures", "copy_seconds", "waiter_figures"]

MB = 1024 * 1024
COLUMNS = "id, ra, dec, mag, name"
# RESPONSEFORMAT, the figure's label, its target as a multiple of COPY, and
# how it is fetched: an async job, a sync query (issue 17, item 2: the text
# formats, async and sync), a sync query asking for gzip (no target: the
# server compresses; aiohttp's and requests' clients ask for it by default).
FORMATS = (
    ("votable", "BINARY2", 1.2, ("async",)),
    ("csv", "CSV", 1.3, ("async", "sync", "sync gzip")),
    ("tsv", "TSV", 1.3, ("async", "sync")),
    ("votable/td", "TABLEDATA", 2.0, ("async", "sync")),
    # VOParquet (the parquet extra): from the same columnar path as BINARY2.
    ("parquet", "VOParquet", 1.2, ("async",)),
)
#: The binary formats of the 10,000,000-row table (issue 17, target 3).
BIG_FORMATS = (("votable", "BINARY2"), ("parquet", "VOParquet"))
#: Runner peak RSS allowed whatever the result's size, MB (issue 17, target 3).
RUNNER_MB = 80
#: The formats whose runner and server memory is a figure of its own.
MEMORY_FIGURES = ("BINARY2", "TABLEDATA", "VOParquet")


def copy_seconds(dsn: str, table: str) -> float:
    """``psql -c "COPY (SELECT ...) TO STDOUT" > /dev/null``, timed."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(
            [
                "psql",
                dsn,
                "-X",
                "-q",
                "-c",
                f"COPY (SELECT {COLUMNS} FROM {table}) TO STDOUT",
            ],
            stdout=devnull,
            check=True,
        )
    return time.perf_counter() - start


async def _big_job(
    session: aiohttp.ClientSession, bench: Bench, table: str, fmt: str, maxrec: int
) -> dict[str, float]:
    """Submission to fully downloaded result, with the execution/download split."""
    start = time.perf_counter()
    job_url = await create_job(
        session,
        bench.tap,
        f"SELECT {COLUMNS} FROM {table}",
        MAXREC=str(maxrec),
        RESPONSEFORMAT=fmt,
    )
    phase = await wait_final(session, job_url)
    done = time.perf_counter()
    if phase != "COMPLETED":
        raise RuntimeError(f"{fmt} job {job_url} ended {phase}")
    nbytes = await fetch(session, f"{job_url}/results/result")
    end = time.perf_counter()
    async with session.delete(job_url, allow_redirects=False) as resp:
        await resp.read()  # keep the disk clean: a 10M-row TABLEDATA is gigabytes
    return {
        "total": end - start,
        "execute": done - start,
        "download": end - done,
        "bytes": nbytes,
    }


def _reset_peaks(server_pid: int) -> bool:
    """Reset the runners' VmHWM (``clear_refs`` 5), so that a figure's peak is
    its own jobs', not that of an earlier job of the same runner (TABLEDATA's
    cursor path holds more). False where the kernel or our rights refuse."""
    done = True
    for pid in runner_pids(server_pid):
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


async def _big_sync(
    session: aiohttp.ClientSession,
    bench: Bench,
    table: str,
    fmt: str,
    maxrec: int,
    *,
    gzip: bool = False,
) -> dict[str, float]:
    """POST /tap/sync to the last byte of the response, uncompressed (as the
    COPY it is compared with) unless ``gzip``: aiohttp's client would ask for
    gzip, which the server's text formats honour by compressing on its CPUs."""
    start = time.perf_counter()
    data = {
        "REQUEST": "doQuery",
        "LANG": "ADQL",
        "QUERY": f"SELECT {COLUMNS} FROM {table}",
        "MAXREC": str(maxrec),
        "RESPONSEFORMAT": fmt,
    }
    nbytes = 0
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    async with session.post(f"{bench.tap}/sync", data=data, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{fmt} sync query answered {resp.status}")
        async for chunk in resp.content.iter_chunked(1 << 20):
            nbytes += len(chunk)
    return {"total": time.perf_counter() - start, "bytes": nbytes}


def _runner_rss(server_pid: int) -> dict[int, float]:
    """Current VmRSS of each TAP runner, MB (what a warm, idle runner holds)."""
    return {p: proc_status(p).get("VmRSS", 0) / MB for p in runner_pids(server_pid)}


def _memory_figures(
    label: str,
    sampler: MemorySampler,
    baseline: int,
    idle: dict[int, float],
    runner: bool = True,
) -> list[Figure]:
    """The runners' peak RSS (``runner``: an async job ran) and the server's."""
    hwm = max(sampler.runner_hwm.values(), default=0)
    sampled = max(sampler.runner_peak.values(), default=0)
    runners = [
        Figure(
            name=f"6 runner peak RSS ({label})",
            value=hwm / MB,
            unit="MB",
            target=Target(RUNNER_MB),
            details={
                "runner_vmhwm_mb": {p: v / MB for p, v in sampler.runner_hwm.items()},
                "runner_sampled_peak_mb": sampled / MB,
                "runner_idle_before_mb": idle,
            },
        )
    ]
    return [
        *(runners if runner else []),
        Figure(
            name=f"6 server peak RSS ({label})",
            value=sampler.server_peak / MB,
            unit="MB",
            floor=baseline / MB,
            floor_name="before",
            details={"extra_mb": (sampler.server_peak - baseline) / MB},
        ),
    ]


async def _format_runs(
    bench: Bench, session: aiohttp.ClientSession, table: str, rows: int, reps: int
) -> tuple[list[Figure], list[float]]:
    """Each format (async, and sync for the text formats) and psql COPY,
    alternating (COPY, result, COPY, result, ...): each figure's floor is the
    median of the COPYs measured beside it, its spread that of the ratios."""
    figures: list[Figure] = []
    all_copies: list[float] = []
    for fmt, label, ratio, modes in FORMATS:
        for mode in modes:
            baseline = server_rss(bench.server_pid)
            idle = _runner_rss(bench.server_pid)
            _reset_peaks(bench.server_pid)
            copies: list[float] = []
            runs: list[dict[str, float]] = []
            with MemorySampler(bench.server_pid) as sampler:
                for _ in range(reps):
                    copies.append(
                        await asyncio.to_thread(copy_seconds, bench.dsn, table)
                    )
                    if mode == "async":
                        run = await _big_job(session, bench, table, fmt, 2 * rows)
                    else:
                        run = await _big_sync(
                            session, bench, table, fmt, 2 * rows, gzip="gzip" in mode
                        )
                    runs.append(run)
            all_copies += copies
            ratios = [r["total"] / c for r, c in zip(runs, copies, strict=True)]
            figures.append(
                Figure(
                    name=f"5 {rows:,} rows {mode} {label}",
                    value=median([r["total"] for r in runs]),
                    unit="s",
                    floor=median(copies),
                    floor_name="COPY",
                    target=None
                    if ratio is None or "gzip" in mode
                    else Target(ratio, of_floor=True),
                    details={
                        "copy_s": summary(copies),
                        "ratio_to_adjacent_copy": summary(ratios),
                        **{k: summary([r[k] for r in runs]) for k in runs[0]},
                    },
                )
            )
            if label in MEMORY_FIGURES:
                sync = "" if mode == "async" else f"{mode} "
                figures += _memory_figures(
                    f"{rows:,} rows {sync}{label}",
                    sampler,
                    baseline,
                    idle,
                    runner=mode == "async",
                )
    return figures, all_copies


async def _make_big_table(dsn: str, rows: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        if (
            await conn.fetchval("SELECT to_regclass('bench.big')") is not None
            and await conn.fetchval("SELECT count(*) FROM bench.big") == rows
        ):
            return
        await conn.execute("DROP TABLE IF EXISTS bench.big")
        await conn.execute(
            "CREATE TABLE bench.big AS SELECT i::bigint AS id, 360 * random() AS ra,"
            " degrees(asin(2 * random() - 1)) AS dec, (6 + 14 * random())::real AS mag,"
            f" 'BIG ' || i AS name FROM generate_series(1, {rows}) AS i"
        )
        await conn.execute("VACUUM ANALYZE bench.big")
    finally:
        await conn.close()
    publish = [
        sys.executable,
        "-m",
        "taprunner",
        "--dsn",
        dsn,
        "tap",
        "publish",
        "bench.big",
    ]
    await asyncio.to_thread(
        subprocess.run, publish, cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


async def _big_table_figures(
    bench: Bench, session: aiohttp.ClientSession
) -> list[Figure]:
    rows = 10_000_000
    await _make_big_table(bench.dsn, rows)
    await asyncio.sleep(6)  # the runners' TAP_SCHEMA cache lives 5 s
    figures: list[Figure] = []
    for fmt, label in BIG_FORMATS:
        baseline = server_rss(bench.server_pid)
        idle = _runner_rss(bench.server_pid)
        _reset_peaks(bench.server_pid)
        # COPY and the job alternate, twice: the VM's speed drifts over a minute.
        copies: list[float] = []
        runs: list[dict[str, float]] = []
        with MemorySampler(bench.server_pid) as sampler:
            for _ in range(bench.reps(2, 1)):
                copies.append(
                    await asyncio.to_thread(copy_seconds, bench.dsn, "bench.big")
                )
                runs.append(await _big_job(session, bench, "bench.big", fmt, 2 * rows))
        figures += [
            Figure(
                name=f"5 10,000,000 rows async {label}",
                value=median([r["total"] for r in runs]),
                unit="s",
                floor=median(copies),
                floor_name="COPY",
                target=Target(1.2, of_floor=True),
                details={
                    "copy_s": copies,
                    **{k: summary([r[k] for r in runs]) for k in runs[0]},
                },
            ),
            *_memory_figures(f"10,000,000 rows {label}", sampler, baseline, idle),
        ]
    return figures


async def big_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    figures, copies = await _format_runs(
        bench, session, "demo.stars", bench.rows, bench.reps(3, 1)
    )
    floor = median(copies)
    copy_line = Figure(
        name=f"5 floor: psql COPY {bench.rows:,} rows",
        value=floor,
        unit="s",
        details={"samples_s": summary(copies)},
    )
    figures.insert(0, copy_line)
    if bench.big:
        figures += await _big_table_figures(bench, session)
    return figures


async def waiter_figures(bench: Bench, _session: aiohttp.ClientSession) -> list[Figure]:
    """N PENDING jobs, one blocked WAIT client each; abort them all in one UPDATE."""
    n = bench.waiters
    await insert_jobs(bench.dsn, "benchwait", "PENDING", n)
    base = f"{bench.tap}/async/benchwait"
    urls = [f"{base}{i:010d}" for i in range(1, n + 1)]
    before = server_rss(bench.server_pid)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def wait(url: str) -> tuple[float, bytes]:
            async with session.get(url, params={"WAIT": "30"}) as resp:
                body = await resp.read()
            return time.perf_counter(), body

        with MemorySampler(bench.server_pid, interval=0.02) as sampler:
            tasks = [asyncio.create_task(wait(url)) for url in urls]
            await asyncio.sleep(max(2.0, n / 300))  # all requests in and waiting
            early = sum(task.done() for task in tasks)
            waiting_rss = server_rss(bench.server_pid)
            conn = await asyncpg.connect(bench.dsn)
            try:
                await conn.execute(
                    "UPDATE uws.job SET phase = 'ABORTED', end_time = now()"
                    " WHERE job_id LIKE 'benchwait%' AND phase = 'PENDING'"
                )
                changed = time.perf_counter()
            finally:
                await conn.close()
            results = await asyncio.gather(*tasks)
    after = server_rss(bench.server_pid)
    delays = [(t - changed) * MS for t, _ in results]
    aborted = sum(b"ABORTED" in body for _, body in results)
    rss = {
        "before_mb": before / MB,
        "waiting_mb": waiting_rss / MB,
        "peak_mb": sampler.server_peak / MB,
        "after_mb": after / MB,
    }
    return [
        Figure(
            name=f"9 {n} waiters: server extra RSS",
            value=(sampler.server_peak - before) / MB,
            unit="MB",
            target=Target(200),
            details=rss,
        ),
        Figure(
            name=f"9 {n} waiters: all woken after UPDATE",
            value=max(delays),
            unit="ms",
            details={
                "delay_ms": summary(delays),
                "aborted_seen": aborted,
                "returned_before_update": early,
            },
            note=""
            if early == 0 and aborted == n
            else f"{early} returned before the UPDATE, {aborted}/{n} saw ABORTED",
        ),
    ]

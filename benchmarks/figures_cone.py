"""Cone searches on big tables (the performance issue's target 5) and the curve
of cone latency against table size.

For each table of ``bench.cone_rows`` (``bench.stars_1m``, ``_10m``, ``_100m``,
built once by :mod:`bigtables` with ``tap load``), 1-arcminute cones around
random centres: the translated SQL's plan must use the position index (EXPLAIN,
asserted); then, alternating in rounds, the sync query from one client (aiohttp),
the same SQL through asyncpg (the floor) and ``GET {tap}/availability`` (the
bare HTTP round trip); then 20 clients in a closed loop (lean HTTP clients, CPU
per cone of the server, PostgreSQL and the clients), 20 asyncpg connections in
a closed loop (the database's floor at that concurrency), and 20 connections
in an open loop at half the closed loop's rate (latency from when each cone was
due). Little's law bounds the closed loop: its latency is clients / throughput,
whatever the service does, once the cores are busy.

Cold and warm are measured apart. The centres are drawn afresh each run, and
the first pass over all of them (the SQL through asyncpg, one connection) is
the cold figure: on the 100M table (14 GB of table and index, beside 23 GB of
RAM shared with everything else) a new cone reads about 3.6 blocks from outside
shared_buffers, some 30 KB from disk (PostgreSQL's blocks read, and the
kernel's ``pgpgin``, per cone). Every other figure sends the same cones again,
warm, whichever loop sends them; the open loop is then run once more at the
same rate on as many new centres (cold). Before, each phase took other
centres of one fixed seed (the 500 first warmed, the 1-client rounds mostly
among them, the closed loop the next 2,000, the open loop the 2,000 after), so
how cold each loop was depended on what earlier runs and groups had left in
the page cache.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
from bigtables import ensure_table, table_name
from coneload import (
    Cones,
    closed_loop,
    open_loop,
    p99,
    plan_of,
    raw_sender,
    sql_sender,
)
from figures_latency import MS, Bench, CpuMeter, _latency
from report import Curve, Figure, Point, Target, median, summary

__all__ = ["cone_curves", "cone_figures"]

CLIENTS = 20
TARGET_MEDIAN_MS = 5.0
TARGET_P99_MS = 20.0


@dataclass
class ConeRun:
    """What was measured on one table (kept: the curve reuses a run's figures)."""

    rows: int
    table: str
    plan: str
    rows_per_cone: float
    one: list[float] = field(default_factory=list)  # sync, 1 client, s
    sql: list[float] = field(default_factory=list)  # asyncpg, 1 connection
    http: list[float] = field(default_factory=list)  # GET availability
    many: list[float] = field(default_factory=list)  # sync, 20 clients
    many_rate: float = 0.0
    many_cpu: dict[str, float] = field(default_factory=dict)
    sql_many: list[float] = field(default_factory=list)
    sql_many_rate: float = 0.0
    opened: list[float] = field(default_factory=list)  # open loop
    open_rate: float = 0.0
    opened_cold: list[float] = field(default_factory=list)  # new centres
    opened_cold_kb: float = 0.0  # read from disk per cone
    blocks: dict[str, int] = field(default_factory=dict)
    cold: list[float] = field(default_factory=list)  # SQL, first touch, s
    cold_io: dict[str, float] = field(default_factory=dict)  # per cone
    seed: int = 0


#: Runs of this process by (service, rows): the curve reuses the group's.
_RUNS: dict[tuple[str, int], ConeRun] = {}


async def _ensure_tables(bench: Bench) -> None:
    work = bench.data_dir or Path(tempfile.gettempdir())
    for rows in bench.cone_rows:
        took = await asyncio.to_thread(ensure_table, bench.dsn, rows, work)
        if took:
            print(f"bench: built {table_name(rows)}: {took}", flush=True)


async def _blocks(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT blks_read, blks_hit FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return {"read": int(row["blks_read"]), "hit": int(row["blks_hit"])}
    finally:
        await conn.close()


def _paged_in_kb() -> int:
    """KB the kernel has read from disk (``pgpgin``; the whole machine's)."""
    with open("/proc/vmstat") as stats:
        for line in stats:
            if line.startswith("pgpgin "):
                return int(line.split()[1])
    return 0


async def _first_touch(
    dsn: str, conn: asyncpg.Connection, cones: Cones
) -> tuple[list[float], dict[str, float], list[int]]:
    """Every cone's SQL once, in turn (warming them all for the loops): the
    latencies (s), reads per cone, and the rows of each."""
    blocks, paged = await _blocks(dsn), _paged_in_kb()
    latencies, counts = [], []
    for sql in cones.sql:
        start = time.perf_counter()
        counts.append(len(await conn.fetch(sql)))
        latencies.append(time.perf_counter() - start)
    after = await _blocks(dsn)
    n = len(cones.sql)
    io = {
        "pg_blocks_read": (after["read"] - blocks["read"]) / n,
        "pg_blocks_hit": (after["hit"] - blocks["hit"]) / n,
        "disk_kb": (_paged_in_kb() - paged) / n,
    }
    return latencies, io, counts


async def _alternating(
    bench: Bench, session: aiohttp.ClientSession, cones: Cones, run: ConeRun
) -> None:
    """1 client: sync, asyncpg and the bare round trip in turns (A B C A B C)."""
    send_sql, close_sql = await sql_sender(bench.dsn, cones)

    async def sync(index: int) -> None:
        params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": cones.adql[index]}
        async with session.get(f"{bench.tap}/sync", params=params) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"cone search answered {resp.status}")

    async def availability(_index: int) -> None:
        async with session.get(f"{bench.tap}/availability") as resp:
            await resp.read()

    try:
        for step in (sync, send_sql):
            for _ in range(5):  # warm-up (connections, caches of code)
                await step(cones.take())
        per_round = bench.reps(40, 10)
        for _ in range(bench.reps(6, 2)):
            for samples, step in (
                (run.one, sync),
                (run.sql, send_sql),
                (run.http, availability),
            ):
                for _ in range(per_round):
                    index = cones.take()
                    start = time.perf_counter()
                    await step(index)
                    samples.append(time.perf_counter() - start)
    finally:
        await close_sql()


async def _concurrent(bench: Bench, cones: Cones, cold: Cones, run: ConeRun) -> None:
    """20 clients: closed loop (HTTP, then asyncpg), then the open loop on the
    same (warm) cones and on ``cold`` ones, never sent before, at one rate."""
    total = bench.reps(2000, 200)
    pairs = [await raw_sender(bench.tap, cones) for _ in range(CLIENTS)]
    try:
        senders = [send for send, _ in pairs]
        await closed_loop(senders, cones, CLIENTS * 3)  # warm-up
        meter = CpuMeter(bench)
        run.many, run.many_rate = await closed_loop(senders, cones, total)
        run.many_cpu = meter.per_op(total)
        run.open_rate = max(1.0, round(run.many_rate / 2))
        run.opened, _ = await open_loop(senders, cones, total, run.open_rate)
    finally:
        for _, close in pairs:
            await close()
    # A sender sends its own Cones' targets: new ones for the new centres.
    pairs = [await raw_sender(bench.tap, cold) for _ in range(CLIENTS)]
    try:
        senders = [send for send, _ in pairs]
        paged = _paged_in_kb()
        run.opened_cold, _ = await open_loop(senders, cold, total, run.open_rate)
        run.opened_cold_kb = (_paged_in_kb() - paged) / total
    finally:
        for _, close in pairs:
            await close()
    sql_pairs = [await sql_sender(bench.dsn, cones) for _ in range(CLIENTS)]
    try:
        senders = [send for send, _ in sql_pairs]
        await closed_loop(senders, cones, CLIENTS * 3)
        run.sql_many, run.sql_many_rate = await closed_loop(senders, cones, total)
    finally:
        for _, close in sql_pairs:
            await close()


async def measure(bench: Bench, session: aiohttp.ClientSession, rows: int) -> ConeRun:
    """The cone figures of the table of ``rows`` stars (once per process)."""
    key = (bench.tap, rows)
    if key in _RUNS:
        return _RUNS[key]
    table = table_name(rows)
    count = bench.reps(8000, 1000)  # more than are sent: no centre twice
    seed = time.time_ns() % 1_000_003  # new centres: the first pass is cold
    cones = await Cones.make(bench.tap, bench.dsn, table, count, seed=seed)
    total = bench.reps(2000, 200)
    fresh = await Cones.make(bench.tap, bench.dsn, table, total, seed=seed + 1)
    conn = await asyncpg.connect(bench.dsn, server_settings={"jit": "off"})
    try:
        plan = await plan_of(conn, cones.sql[0])
        cold, cold_io, counts = await _first_touch(bench.dsn, conn, cones)
    finally:
        await conn.close()
    run = ConeRun(rows, table, plan, sum(counts) / len(counts))
    run.cold, run.cold_io, run.seed = cold, cold_io, seed
    before = await _blocks(bench.dsn)
    await _alternating(bench, session, cones, run)
    await _concurrent(bench, cones, fresh, run)
    after = await _blocks(bench.dsn)
    run.blocks = {k: after[k] - before[k] for k in after}
    _RUNS[key] = run
    return run


def _ms(values: list[float]) -> dict[str, float]:
    return {**summary([v * MS for v in values]), "p99": p99(values) * MS}


def _figures(run: ConeRun) -> list[Figure]:
    size = f"{run.rows / 1e6:g}M"
    common = {
        "table": run.table,
        "rows_per_cone": round(run.rows_per_cone, 4),
        "radius_arcmin": 1,
    }
    cpu = run.many_cpu
    one = _latency(
        f"5 cone 1' sync, 1 client, {size}",
        run.one,
        floor=median(run.sql),
        floor_name="SQL",
        **common,
        p99_ms=p99(run.one) * MS,
        http_floor_ms=median(run.http) * MS,
        plan=run.plan,
    )
    many = _latency(
        f"5 cone 1' sync, {CLIENTS} clients, {size}",
        run.many,
        floor=median(run.sql_many),
        floor_name=f"SQL x{CLIENTS}",
        target_ms=TARGET_MEDIAN_MS,
        **common,
        samples_ms=_ms(run.many),
        cones_per_s=round(run.many_rate, 1),
        sql_cones_per_s=round(run.sql_many_rate, 1),
        sql_ms=_ms(run.sql_many),
        cpu=cpu,
        blocks=run.blocks,
    )
    many.note = (
        f"{run.many_rate:.0f} cones/s (SQL alone {run.sql_many_rate:.0f}/s); "
        f"~{run.rows_per_cone:.3g} rows per cone; CPU ms/cone: "
        + ", ".join(f"{k.removesuffix('_cpu_ms')} {v:.2f}" for k, v in cpu.items())
        + f"; Little: {CLIENTS} / {run.many_rate:.0f}/s ="
        f" {CLIENTS / run.many_rate * MS:.1f} ms"
    )
    tail = Figure(
        name=f"5 cone 1' sync p99, {CLIENTS} clients, {size}",
        value=p99(run.many) * MS,
        unit="ms",
        floor=p99(run.sql_many) * MS,
        floor_name=f"SQL x{CLIENTS} p99",
        target=Target(TARGET_P99_MS),
    )
    opened = _latency(
        f"5 cone 1' sync, open loop {run.open_rate:g}/s, {size}",
        run.opened,
        floor=median(run.sql),
        floor_name="SQL",
        samples_ms=_ms(run.opened),
        rate_per_s=run.open_rate,
        connections=CLIENTS,
    )
    opened.note = f"p99 {p99(run.opened) * MS:.1f} ms at {run.open_rate:g} cones/s"
    opened.details["cones"] = "the closed loop's, warm"
    opened_cold = _latency(
        f"5 cone 1' sync, open loop {run.open_rate:g}/s, cold, {size}",
        run.opened_cold,
        floor=median(run.opened),
        floor_name="warm",
        samples_ms=_ms(run.opened_cold),
        rate_per_s=run.open_rate,
        connections=CLIENTS,
        disk_kb_per_cone=run.opened_cold_kb,
    )
    opened_cold.note = (
        f"p99 {p99(run.opened_cold) * MS:.1f} ms at {run.open_rate:g} cones/s,"
        f" {run.opened_cold_kb:.0f} KB read from disk per cone"
    )
    cold = _latency(
        f"5 cone 1' SQL, cold (first touch), {size}",
        run.cold,
        floor=median(run.sql),
        floor_name="SQL warm",
        **common,
        p99_ms=p99(run.cold) * MS,
        per_cone=run.cold_io,
        seed=run.seed,
    )
    cold.note = (
        f"p99 {p99(run.cold) * MS:.1f} ms; per cone: "
        f"{run.cold_io['pg_blocks_read']:.1f} blocks read by PostgreSQL,"
        f" {run.cold_io['disk_kb']:.0f} KB read from disk"
    )
    floors = [
        cold,
        _latency(f"floor: cone SQL via asyncpg, {size}", run.sql, **common),
        _latency(f"floor: GET /tap/availability (cone run, {size})", run.http),
    ]
    return [one, many, tail, opened, opened_cold, *floors]


async def cone_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    await _ensure_tables(bench)
    figures: list[Figure] = []
    for rows in bench.cone_rows:
        figures += _figures(await measure(bench, session, rows))
    return figures


async def cone_curves(bench: Bench, session: aiohttp.ClientSession) -> list[Curve]:
    """Cone latency against table size (x: rows of bench.cone_rows)."""
    await _ensure_tables(bench)
    runs = [await measure(bench, session, rows) for rows in bench.cone_rows]
    series = {
        "1 client, median": [Point.of(r.rows, [s * MS for s in r.one]) for r in runs],
        f"{CLIENTS} clients, median": [
            Point.of(r.rows, [s * MS for s in r.many]) for r in runs
        ],
        f"{CLIENTS} clients, p99": [
            Point(r.rows, p99(r.many) * MS, p99(r.many) * MS, p99(r.many) * MS)
            for r in runs
        ],
        "SQL via asyncpg (floor), median": [
            Point.of(r.rows, [s * MS for s in r.sql]) for r in runs
        ],
    }
    return [
        Curve(
            name="cone_latency_by_rows",
            title="1-arcminute cone search (sync) against table size",
            xlabel="rows in the table",
            ylabel="latency (ms)",
            series=series,
            ylog=True,
            note=", ".join(
                f"{r.rows / 1e6:g}M: ~{r.rows_per_cone:.3g} rows/cone" for r in runs
            ),
        )
    ]

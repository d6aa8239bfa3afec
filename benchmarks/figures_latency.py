"""Latency figures: sync and async tiny queries, pyvo, WAIT wake-up, job list
(throughput: :mod:`figures_throughput`). Each returns :class:`Figure` lines
with floors measured in the same run.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from client import TINY_QUERY, create_job, phase_of, run_job
from live import cpu_seconds, descendants, runner_pids, server_pids
from report import Figure, Target, median, p95, summary

__all__ = [
    "Bench",
    "CpuMeter",
    "async_figures",
    "floors",
    "joblist_figures",
    "pyvo_figures",
    "sync_figures",
    "wakeup_figures",
]

MS = 1000.0


@dataclass
class Bench:
    """What every figure needs: where the server is and how hard to try."""

    tap: str
    dsn: str
    server_pid: int
    quick: bool
    rows: int
    big: bool = False
    waiters: int = 1000
    http_floor: float | None = None  # one HTTP request with one DB round trip, s
    postmaster_pid: int | None = None  # the embedded cluster's (None: external DSN)
    workers: int = 1  # server processes (each with its own runner slots)
    #: Kept between runs (``--data-dir``): big tables are built there once.
    data_dir: Path | None = None
    #: Sizes of the cone group's tables (bench.stars_1m...), smallest first.
    cone_rows: tuple[int, ...] = (1_000_000,)

    def reps(self, full: int, quick: int) -> int:
        return quick if self.quick else full


async def _timed(
    repeat: int, step: Callable[[], Awaitable[object]], warmup: int = 3
) -> list[float]:
    for _ in range(warmup):
        await step()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await step()
        samples.append(time.perf_counter() - start)
    return samples


def _latency(
    name: str,
    samples: list[float],
    *,
    floor: float | None = None,
    floor_name: str = "",
    target_ms: float | None = None,
    **details: object,
) -> Figure:
    return Figure(
        name=name,
        value=median(samples) * MS,
        unit="ms",
        p95=p95(samples) * MS,
        floor=None if floor is None else floor * MS,
        floor_name=floor_name,
        target=None if target_ms is None else Target(target_ms),
        details={"samples_ms": summary([s * MS for s in samples]), **details},
    )


async def floors(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    """The floors: an HTTP round trip that does SELECT 1, and the tiny SQL itself."""

    async def availability() -> None:
        async with session.get(f"{bench.tap}/availability") as resp:
            await resp.read()

    http = await _timed(bench.reps(200, 50), availability)
    bench.http_floor = median(http)
    conn = await asyncpg.connect(bench.dsn)
    try:
        stmt = await conn.prepare(
            "SELECT id, ra, dec, mag, name FROM demo.stars LIMIT 10"
        )
        sql = await _timed(bench.reps(200, 50), stmt.fetch)
    finally:
        await conn.close()
    return [
        _latency("floor: GET /tap/availability", http),
        _latency("floor: tiny SQL via asyncpg", sql),
    ]


class CpuMeter:
    """CPU milliseconds per operation of the server, its TAP runners, PostgreSQL
    (embedded cluster only) and this benchmark process (the clients)."""

    def __init__(self, bench: Bench) -> None:
        self.groups: dict[str, Callable[[], float]] = {
            "server": lambda: cpu_seconds(server_pids(bench.server_pid)),
            "runner": lambda: cpu_seconds(runner_pids(bench.server_pid)),
            "client": lambda: float(sum(resource.getrusage(resource.RUSAGE_SELF)[:2])),
        }
        if bench.postmaster_pid is not None:
            pg = bench.postmaster_pid
            self.groups["postgres"] = lambda: cpu_seconds(sorted(descendants([pg])))
        self.start = {name: read() for name, read in self.groups.items()}

    def per_op(self, count: int) -> dict[str, float]:
        return {
            f"{name}_cpu_ms": round((read() - self.start[name]) * MS / count, 2)
            for name, read in self.groups.items()
        }


async def sync_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    params = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": TINY_QUERY}

    async def query() -> None:
        async with session.get(f"{bench.tap}/sync", params=params) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"sync query answered {resp.status}")

    meter = CpuMeter(bench)
    samples = await _timed(bench.reps(200, 30), query, warmup=0)
    return [
        _latency(
            "4 sync tiny query",
            samples,
            floor=bench.http_floor,
            floor_name="1 req",
            target_ms=8,
            cpu=meter.per_op(len(samples)),
        )
    ]


async def async_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    for _ in range(5):
        await run_job(session, bench.tap, TINY_QUERY)
    meter = CpuMeter(bench)
    timings = [
        await run_job(session, bench.tap, TINY_QUERY) for _ in range(bench.reps(60, 15))
    ]
    cpu = meter.per_op(len(timings))
    floor = None if bench.http_floor is None else 3 * bench.http_floor
    stages = {
        stage: summary([getattr(t, stage) * MS for t in timings])
        for stage in ("create", "wait", "fetch")
    }
    return [
        _latency(
            "1 async tiny end to end",
            [t.total for t in timings],
            floor=floor,
            floor_name="3 req",
            target_ms=25,
            stages_ms=stages,
            cpu=cpu,
        )
    ]


async def pyvo_figures(bench: Bench, _session: aiohttp.ClientSession) -> list[Figure]:
    import pyvo

    service = pyvo.dal.TAPService(bench.tap)
    floor = None if bench.http_floor is None else 3 * bench.http_floor

    def repeat(call: Callable[[str], object], n: int) -> list[float]:
        for _ in range(3):
            call(TINY_QUERY)
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            call(TINY_QUERY)
            samples.append(time.perf_counter() - start)
        return samples

    run_async = await asyncio.to_thread(repeat, service.run_async, bench.reps(40, 8))
    run_sync = await asyncio.to_thread(repeat, service.run_sync, bench.reps(60, 10))
    return [
        _latency(
            "2 pyvo run_async tiny",
            run_async,
            floor=floor,
            floor_name="3 req",
            target_ms=80,
        ),
        _latency(
            "2 pyvo run_sync tiny", run_sync, floor=bench.http_floor, floor_name="1 req"
        ),
    ]


async def _notify_floor(dsn: str, repeat: int) -> list[float]:
    """LISTEN/NOTIFY round trip: from NOTIFY's completion to the listener callback."""
    listener, notifier = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    arrived: asyncio.Queue[float] = asyncio.Queue()
    await listener.add_listener(
        "bench_floor", lambda *_args: arrived.put_nowait(time.perf_counter())
    )
    samples = []
    try:
        for _ in range(repeat):
            await notifier.execute("NOTIFY bench_floor")
            sent = time.perf_counter()
            samples.append(await asyncio.wait_for(arrived.get(), 5) - sent)
    finally:
        await listener.close()
        await notifier.close()
    return samples


async def _wake_once(
    bench: Bench, waiter: aiohttp.ClientSession, poster: aiohttp.ClientSession
) -> tuple[float, float, str]:
    job_url = await create_job(poster, bench.tap, TINY_QUERY, run=False)

    async def wait() -> tuple[float, bytes]:
        async with waiter.get(job_url, params={"WAIT": "30"}) as resp:
            body = await resp.read()
        return time.perf_counter(), body

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.1)  # the waiter is registered by now
    sent = time.perf_counter()
    async with poster.post(
        f"{job_url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False
    ) as resp:
        await resp.read()
    posted = time.perf_counter()
    woken, body = await task
    return woken - posted, woken - sent, phase_of(body)


async def wakeup_figures(bench: Bench, _session: aiohttp.ClientSession) -> list[Figure]:
    floor = await _notify_floor(bench.dsn, 30)
    delays, since_sent, phases = [], [], []
    async with aiohttp.ClientSession() as waiter, aiohttp.ClientSession() as poster:
        for _ in range(bench.reps(40, 10)):
            delay, from_sent, phase = await _wake_once(bench, waiter, poster)
            delays.append(delay)
            since_sent.append(from_sent)
            phases.append(phase)
    figure = _latency(
        "7 WAIT wake-up after ABORT",
        delays,
        floor=median(floor),
        floor_name="NOTIFY",
        target_ms=5,
        phases_seen=sorted(set(phases)),
        from_post_sent_ms=summary([s * MS for s in since_sent]),
        notify_floor_ms=summary([s * MS for s in floor]),
    )
    if median(delays) < 0:
        figure.note = (
            "negative: the waiter's answer arrives before the POST's own "
            "(see from_post_sent_ms in the JSON)"
        )
    return [figure]


_INSERT_JOBS = """
INSERT INTO uws.job (job_id, kind, phase, owner, creation_time, destruction_time,
                     parameters)
SELECT $1 || lpad(i::text, 10, '0'), 'tap', $2::uws.phase, $4::text,
       now() - i * interval '1 second', now() + interval '1 day',
       '[{"name": "lang", "value": "ADQL", "by_reference": false},'
       '{"name": "query", "value": "SELECT TOP 10 * FROM demo.stars",'
       ' "by_reference": false}]'::jsonb
FROM generate_series(1, $3) AS i
"""
_LIST_SQL = """
SELECT job_id, phase, run_id, owner, creation_time FROM uws.job
WHERE owner = $2 AND phase <> 'ARCHIVED' AND kind = 'tap'
ORDER BY creation_time DESC, job_id LIMIT $1
"""


#: The owner of the listed jobs: an anonymous job list is empty (README,
#: "Authentication and anonymous users"); the server trusts its header.
LIST_OWNER = "bench-lister"


async def insert_jobs(
    dsn: str, prefix: str, phase: str, count: int, owner: str | None = None
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DELETE FROM uws.job WHERE job_id LIKE '{prefix}%'")
        await conn.execute(_INSERT_JOBS, prefix, phase, count, owner)
    finally:
        await conn.close()


async def joblist_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    await insert_jobs(bench.dsn, "benchlist", "COMPLETED", 10_000, LIST_OWNER)
    await asyncio.sleep(1.0)  # let the listener drain the INSERT notifications
    sizes: list[int] = []
    headers = {"X-Remote-User": LIST_OWNER}

    def lister(params: dict[str, str]) -> Callable[[], Awaitable[None]]:
        async def get() -> None:
            async with session.get(
                f"{bench.tap}/async", params=params, headers=headers
            ) as resp:
                body = await resp.read()
            sizes.append(body.count(b"<uws:jobref"))

        return get

    last = await _timed(bench.reps(100, 20), lister({"LAST": "100"}))
    listed_last = sizes[-1]
    full = await _timed(bench.reps(10, 3), lister({}), warmup=1)
    conn = await asyncpg.connect(bench.dsn)
    try:
        stmt = await conn.prepare(_LIST_SQL)
        total = await conn.fetchval("SELECT count(*) FROM uws.job")
        sql_last = await _timed(50, lambda: stmt.fetch(100, LIST_OWNER))
        sql_full = await _timed(5, lambda: stmt.fetch(1_000_000, LIST_OWNER), warmup=1)
    finally:
        await conn.close()
    return [
        _latency(
            "8 job list LAST=100",
            last,
            floor=median(sql_last),
            floor_name="SQL",
            target_ms=10,
            jobs_in_table=total,
            listed=listed_last,
        ),
        _latency(
            "8 job list, all",
            full,
            floor=median(sql_full),
            floor_name="SQL",
            jobs_in_table=total,
            listed=sizes[-1],
        ),
    ]

"""Upload figures: a BINARY2 VOTable of up to 1,000,000 rows uploaded to an async
job and joined with demo.stars, by id and by a 1-arcsecond crossmatch, against
``psql``: ``\\copy`` of the same rows (as CSV) into a temporary table, ANALYZE,
and the same join; the runner's memory at 100,000 and at 1,000,000 upload rows.

The upload's rows are demo.stars' first rows (ids, and positions moved 0.3
arcsec north, so each finds its star in the crossmatch), written once per run
with numpy. Each job asks for CSV and the rows are counted; so is psql's output.
Ours and the floor alternate, medians are compared.
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg
import numpy as np
from client import wait_final
from figures_latency import Bench
from live import MemorySampler, cpu_seconds, descendants, proc_status, runner_pids
from report import Figure, Target, median, summary

__all__ = ["upload_figures"]

MB = 1024 * 1024
#: Most upload rows (the TAP service's default limit per uploaded table).
MAX_ROWS = 1_000_000
#: Rows of the small upload whose runner memory the large one's is compared with.
SMALL_ROWS = 100_000
OFFSET_DEG = 0.3 / 3600
#: The two joins, in ADQL (the job) and in SQL (psql, on the \copy table ``up``).
JOINS = {
    "by id": (
        "SELECT u.id, s.mag FROM TAP_UPLOAD.up AS u JOIN demo.stars AS s"
        " ON s.id = u.id",
        "SELECT u.id, s.mag FROM up AS u JOIN demo.stars AS s ON s.id = u.id",
    ),
    "crossmatch 1 arcsec": (
        "SELECT u.id, s.id AS star FROM TAP_UPLOAD.up AS u JOIN demo.stars AS s"
        " ON DISTANCE(POINT(u.ra, u.dec), POINT(s.ra, s.dec)) < 1.0 / 3600",
        "SELECT u.id, s.id AS star FROM up AS u JOIN demo.stars AS s"
        " ON spoint(radians(s.ra), radians(s.dec))"
        " @ scircle(spoint(radians(u.ra), radians(u.dec)), radians(1.0 / 3600))",
    ),
}
_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
    '<RESOURCE type="results"><TABLE name="up">\n'
    '<FIELD name="id" datatype="long"/>\n'
    '<FIELD name="ra" datatype="double" unit="deg"/>\n'
    '<FIELD name="dec" datatype="double" unit="deg"/>\n'
    '<DATA><BINARY2><STREAM encoding="base64">\n'
)
_TAIL = "</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>\n"


async def _stars(dsn: str, rows: int) -> np.ndarray:
    """demo.stars' first ``rows`` ids and positions, moved by OFFSET_DEG."""
    conn = await asyncpg.connect(dsn)
    try:
        records = await conn.fetch(
            "SELECT id, ra, dec FROM demo.stars ORDER BY id LIMIT $1", rows
        )
    finally:
        await conn.close()
    table = np.zeros(
        len(records), dtype=[("m", "u1"), ("id", ">i8"), ("ra", ">f8"), ("dec", ">f8")]
    )
    table["id"] = [r[0] for r in records]
    table["ra"] = [r[1] for r in records]
    dec = np.array([r[2] for r in records])
    # north, or south near the pole: always 0.3 arcsec from the star
    table["dec"] = np.where(dec + OFFSET_DEG > 90, dec - OFFSET_DEG, dec + OFFSET_DEG)
    return table


def _write_files(table: np.ndarray, directory: Path, label: str) -> tuple[Path, Path]:
    """The rows as a BINARY2 VOTable and as CSV (for psql's \\copy)."""
    votable = directory / f"up-{label}.vot"
    with votable.open("wb") as out:
        out.write(_HEAD.encode())
        data = table.tobytes()
        step = 57 * 20_000  # whole base64 lines of 76 characters
        for start in range(0, len(data), step):
            out.write(base64.encodebytes(data[start : start + step]))
        out.write(_TAIL.encode())
    csv = directory / f"up-{label}.csv"
    with csv.open("w") as out:
        for start in range(0, len(table), 100_000):
            part = table[start : start + 100_000]
            out.writelines(
                f"{i},{r!r},{d!r}\n"
                for i, r, d in zip(
                    part["id"].tolist(),
                    part["ra"].tolist(),
                    part["dec"].tolist(),
                    strict=True,
                )
            )
    return votable, csv


async def _count_lines(stream: asyncio.StreamReader | aiohttp.StreamReader) -> int:
    lines = 0
    while chunk := await stream.read(1 << 20):
        lines += chunk.count(b"\n")
    return lines


async def _job(
    session: aiohttp.ClientSession, bench: Bench, votable: Path, query: str, rows: int
) -> dict[str, float]:
    """Upload, run, wait, download and count: seconds and rows of one job."""
    start = time.perf_counter()
    form = aiohttp.FormData()
    for key, value in (
        ("LANG", "ADQL"),
        ("QUERY", query),
        ("UPLOAD", "up,param:up"),
        ("MAXREC", str(2 * rows + 10)),
        ("RESPONSEFORMAT", "csv"),
        ("PHASE", "RUN"),
    ):
        form.add_field(key, value)
    with votable.open("rb") as data:
        form.add_field(
            "up", data, filename=votable.name, content_type="application/x-votable+xml"
        )
        async with session.post(
            f"{bench.tap}/async", data=form, allow_redirects=False
        ) as resp:
            await resp.read()
            if resp.status != 303:
                raise RuntimeError(f"upload job creation answered {resp.status}")
            job_url = resp.headers["Location"]
    submitted = time.perf_counter()
    phase = await wait_final(session, job_url)
    done = time.perf_counter()
    if phase != "COMPLETED":
        async with session.get(f"{job_url}/error") as resp:
            raise RuntimeError(
                f"upload job {job_url} ended {phase}: {await resp.text()}"
            )
    async with session.get(f"{job_url}/results/result") as resp:
        lines = await _count_lines(resp.content)
    end = time.perf_counter()
    async with session.delete(job_url, allow_redirects=False) as resp:
        await resp.read()
    return {
        "total": end - start,
        "submit": submitted - start,
        "execute": done - submitted,
        "download": end - done,
        "rows": lines - 1,  # the CSV header
    }


async def _floor(dsn: str, csv: Path, sql: str) -> dict[str, float]:
    """psql: \\copy the CSV into a temporary table, ANALYZE, the join to stdout."""
    script = (
        "CREATE TEMPORARY TABLE up (id bigint, ra double precision,"
        " dec double precision);\n"
        f"\\copy up FROM '{csv}' WITH (FORMAT csv)\n"
        "ANALYZE up;\n"
        f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER);\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(script.encode())
    process.stdin.close()
    lines = await _count_lines(process.stdout)
    if await process.wait() != 0:
        raise RuntimeError("psql failed")
    end = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "total": end - start,
        "rows": lines - 1,
        "psql_cpu_s": after.ru_utime
        + after.ru_stime
        - before.ru_utime
        - before.ru_stime,
    }


class _Cpu:
    """CPU seconds of the runners, the server and PostgreSQL since the last read."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.last = self._read()

    def _read(self) -> dict[str, float]:
        bench = self.bench
        read = {"runner": cpu_seconds(runner_pids(bench.server_pid))}
        read["server"] = cpu_seconds([bench.server_pid])
        if bench.postmaster_pid is not None:
            pg = bench.postmaster_pid
            read["postgres"] = cpu_seconds(sorted(descendants([pg]))) + _reaped(pg)
        return read

    def since(self) -> dict[str, float]:
        now = self._read()
        spent = {f"{k}_cpu_s": round(now[k] - self.last.get(k, 0), 2) for k in now}
        self.last = now
        return spent


def _reaped(pid: int) -> float:
    """CPU seconds of ``pid``'s children that have ended (psql's backends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def _memory(sampler: MemorySampler, idle: dict[int, int]) -> dict[str, float]:
    peak = max(sampler.runner_peak.values(), default=0)
    return {
        "runner_sampled_peak_mb": peak / MB,
        "runner_idle_mb": max(idle.values(), default=0) / MB,
        "runner_vmhwm_mb": max(sampler.runner_hwm.values(), default=0) / MB,
    }


async def upload_figures(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    rows = min(bench.rows, MAX_ROWS)
    small = min(SMALL_ROWS, max(1, rows // 10))
    reps = bench.reps(3, 1)
    with tempfile.TemporaryDirectory(prefix="aiouws-upload-") as name:
        directory = Path(name)
        table = await _stars(bench.dsn, rows)
        small_vot, _ = await asyncio.to_thread(
            _write_files, table[:small], directory, "small"
        )
        votable, csv = await asyncio.to_thread(_write_files, table, directory, "big")
        size_mb = votable.stat().st_size / MB
        del table
        by_id = JOINS["by id"][0]
        idle = {
            p: proc_status(p).get("VmRSS", 0) for p in runner_pids(bench.server_pid)
        }
        with MemorySampler(bench.server_pid) as small_memory:
            await _job(session, bench, small_vot, by_id, small)
        figures: list[Figure] = []
        big_memory: dict[str, float] = {}
        for label, (adql, sql) in JOINS.items():
            ours: list[dict[str, float]] = []
            floors: list[dict[str, float]] = []
            cpu = _Cpu(bench)
            for _ in range(reps):  # alternating: the machine's speed drifts
                with MemorySampler(bench.server_pid) as sampler:
                    ours.append(await _job(session, bench, votable, adql, rows))
                ours[-1].update(cpu.since())
                big_memory = _memory(sampler, idle) if not big_memory else big_memory
                floors.append(await _floor(bench.dsn, csv, sql))
                floors[-1].update(cpu.since())
            if {r["rows"] for r in ours} != {r["rows"] for r in floors}:
                raise RuntimeError(f"{label}: rows differ: {ours} {floors}")
            figures.append(
                Figure(
                    name=f"4 upload {rows:,} rows BINARY2, join {label}",
                    value=median([r["total"] for r in ours]),
                    unit="s",
                    floor=median([r["total"] for r in floors]),
                    floor_name="psql \\copy+join",
                    target=Target(3, of_floor=True),
                    details={
                        "upload_mb": round(size_mb, 1),
                        "result_rows": ours[0]["rows"],
                        **{k: summary([r[k] for r in ours]) for k in ours[0]},
                        "floor": {
                            k: summary([r[k] for r in floors]) for k in floors[0]
                        },
                    },
                )
            )
    small_figures = _memory(small_memory, idle)
    figures.append(
        Figure(
            name=f"4 upload runner peak RSS, {rows:,} rows",
            value=big_memory["runner_sampled_peak_mb"],
            unit="MB",
            floor=small_figures["runner_sampled_peak_mb"],
            floor_name=f"{small:,} rows",
            target=Target(1.25, of_floor=True),
            details={"large": big_memory, "small": small_figures},
        )
    )
    return figures

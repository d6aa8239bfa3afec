"""Throughput figures (issue 17, target 1): tiny async jobs from 20 concurrent
clients, jobs per second and CPU milliseconds per job of each process group.

Two clients, in alternating rounds (lean, full, lean, full, ...):

* the full client (:mod:`fullclient`, a process of its own): aiohttp, POST with
  ``PHASE=RUN``, the 303 followed to the job, ``WAIT=-1`` until final, the
  result fetched and parsed with ``astropy.io.votable``: what an independent
  client does. Its CPU is the client's.
* the lean clients (:mod:`rawhttp`, in this process): the same requests but
  the 303 followed by hand to ``WAIT=-1`` at once, and no parse; a load
  generator that leaves the shared cores to the service.

CPU per job is measured per round from /proc: the server (its workers), the
TAP runners, PostgreSQL (embedded cluster only) and the client.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from client import TINY_QUERY, run_job, run_job_raw
from figures_latency import MS, Bench
from live import cpu_seconds, descendants, runner_pids, server_pids
from rawhttp import RawConnection
from report import Figure, Target, median, summary

__all__ = ["FullClient", "throughput_figures", "throughput_round"]

CLIENTS = 20
FULL_SCRIPT = Path(__file__).resolve().parent / "fullclient.py"


async def throughput_round(
    bench: Bench, jobs: int, clients: int, *, lean: bool = True
) -> tuple[float, list[float]]:
    """``jobs`` tiny jobs from ``clients`` concurrent clients in this process:
    (jobs/s, latencies). ``lean``: :class:`rawhttp.RawConnection` clients,
    else aiohttp sessions (without the parse: see :class:`FullClient`)."""
    left = jobs
    latencies: list[float] = []
    tap_path = urlsplit(bench.tap).path

    async def lean_client() -> None:
        nonlocal left
        conn = RawConnection.to(bench.tap)
        try:
            while left > 0:
                left -= 1
                latencies.append(await run_job_raw(conn, tap_path, TINY_QUERY))
        finally:
            await conn.close()

    async def aiohttp_client() -> None:
        nonlocal left
        async with aiohttp.ClientSession() as session:
            while left > 0:
                left -= 1
                latencies.append((await run_job(session, bench.tap, TINY_QUERY)).total)

    client = lean_client if lean else aiohttp_client
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return jobs / (time.perf_counter() - start), latencies


class FullClient:
    """The :mod:`fullclient` process: ``clients`` aiohttp sessions that parse
    every result with astropy."""

    def __init__(self, tap: str, clients: int) -> None:
        self.tap = tap
        self.clients = clients
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> FullClient:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(FULL_SCRIPT),
            self.tap,
            "--clients",
            str(self.clients),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(self._line(), 120)
        if line != b"ready":
            raise RuntimeError(f"full client did not start: {line!r}")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.write(b"quit\n")
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def round(self, jobs: int) -> dict[str, object]:
        """Run ``jobs`` jobs: rate, seconds, cpu (s), latencies, rows."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"go {jobs}\n".encode())
        line = await asyncio.wait_for(self._line(), 600)
        if not line.startswith(b"{"):
            raise RuntimeError(f"full client failed: {line!r}")
        result: dict[str, object] = json.loads(line)
        return result

    async def _line(self) -> bytes:
        assert self.process is not None and self.process.stdout is not None
        return (await self.process.stdout.readline()).strip()


class _Cpu:
    """CPU seconds of the server, the runners and PostgreSQL, summed over the
    rounds measured with :meth:`measure`, and of the client as added."""

    def __init__(self, bench: Bench) -> None:
        self.read: dict[str, Callable[[], float]] = {
            "server": lambda: cpu_seconds(server_pids(bench.server_pid)),
            "runner": lambda: cpu_seconds(runner_pids(bench.server_pid)),
        }
        if bench.postmaster_pid is not None:
            pg = bench.postmaster_pid
            self.read["postgres"] = lambda: cpu_seconds(sorted(descendants([pg])))
        self.used = dict.fromkeys([*self.read, "client"], 0.0)
        self.jobs = 0

    def start(self) -> dict[str, float]:
        return {name: read() for name, read in self.read.items()}

    def stop(self, start: dict[str, float], jobs: int, client: float) -> None:
        for name, read in self.read.items():
            self.used[name] += read() - start[name]
        self.used["client"] += client
        self.jobs += jobs

    def per_job(self) -> dict[str, float]:
        return {
            f"{name}_cpu_ms": round(seconds * MS / max(self.jobs, 1), 2)
            for name, seconds in self.used.items()
        }


def _own_cpu() -> float:
    return float(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))


def _figure(
    name: str,
    rates: list[float],
    latencies: list[float],
    cpu: _Cpu,
    target: float,
    jobs: int,
    **details: object,
) -> Figure:
    per_job = cpu.per_job()
    return Figure(
        name=name,
        value=median(rates),
        unit="jobs/s",
        target=Target(target, at_least=True),
        details={
            "rates": [round(r, 1) for r in rates],
            "jobs_per_round": jobs,
            "clients": CLIENTS,
            "job_latency_ms": summary([s * MS for s in latencies]),
            "cpu": per_job,
            **details,
        },
        note=f"{min(rates):.0f}-{max(rates):.0f} jobs/s; CPU ms/job: "
        + ", ".join(f"{k.removesuffix('_cpu_ms')} {v:.1f}" for k, v in per_job.items()),
    )


async def throughput_figures(
    bench: Bench, _session: aiohttp.ClientSession
) -> list[Figure]:
    """Lean and full rounds of ``jobs`` jobs from 20 clients, alternating."""
    jobs, rounds = (200, bench.reps(5, 1)) if not bench.quick else (100, 1)
    lean_cpu, full_cpu = _Cpu(bench), _Cpu(bench)
    lean_rates: list[float] = []
    full_rates: list[float] = []
    lean_latencies: list[float] = []
    full_latencies: list[float] = []
    rows: list[int] = []
    await throughput_round(bench, 40, CLIENTS)  # warm-up
    async with FullClient(bench.tap, CLIENTS) as full:
        for _ in range(rounds):
            start, own = lean_cpu.start(), _own_cpu()
            rate, latencies = await throughput_round(bench, jobs, CLIENTS)
            lean_cpu.stop(start, jobs, _own_cpu() - own)
            lean_rates.append(rate)
            lean_latencies += latencies
            start = full_cpu.start()
            result = await full.round(jobs)
            full_cpu.stop(start, jobs, float(result["cpu"]))  # type: ignore[arg-type]
            full_rates.append(float(result["rate"]))  # type: ignore[arg-type]
            full_latencies += result["latencies"]  # type: ignore[operator]
            rows.append(int(result["rows"]))  # type: ignore[call-overload]
    return [
        _figure(
            "3 throughput, full aiohttp client (astropy parse)",
            full_rates,
            full_latencies,
            full_cpu,
            200,
            jobs,
            rows_parsed=rows,
        ),
        _figure(
            "3 throughput, lean clients",
            lean_rates,
            lean_latencies,
            lean_cpu,
            300,
            jobs,
        ),
    ]

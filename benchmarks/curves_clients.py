"""The ``clients`` charts of ``scripts/bench --curves`` (``CURVES`` in run.py).

Tiny async jobs (create with PHASE=RUN, WAIT, fetch) from 1 ... 64 concurrent
clients, in the rounds of the throughput figure (figures_throughput): jobs/s and
job latency with the lean clients and with aiohttp clients, alternating, and
the CPU time per job of each process group (lean rounds): on a shared machine
the CPU per job is the steadier measure. Each point is the median of repeated
rounds; low and high are the smallest and largest round.
"""

from __future__ import annotations

import aiohttp
from curves_rows import Samples
from figures_latency import MS, Bench, CpuMeter
from figures_throughput import throughput_round
from report import Curve, median, p95

__all__ = ["client_curves"]

CLIENTS = (1, 2, 4, 8, 16, 32, 64)
QUICK_CLIENTS = (1, 4, 16, 64)


async def client_curves(bench: Bench, _session: aiohttp.ClientSession) -> list[Curve]:
    counts = QUICK_CLIENTS if bench.quick else CLIENTS
    await throughput_round(bench, 40, 20)  # warm-up
    rates, latency, p95s, cpu = Samples(), Samples(), Samples(), Samples()
    reps = bench.reps(3, 1)
    for clients in counts:
        jobs = max(bench.reps(100, 40), 4 * clients)
        for _ in range(reps):
            # Lean and aiohttp clients alternate: the machine's speed drifts.
            for lean, label in ((True, "lean clients"), (False, "aiohttp clients")):
                meter = CpuMeter(bench)
                rate, latencies = await throughput_round(
                    bench, jobs, clients, lean=lean
                )
                if lean:
                    for key, ms in meter.per_op(jobs).items():
                        cpu.add(key.removesuffix("_cpu_ms"), clients, ms)
                rates.add(label, clients, rate)
                latency.add(f"median, {label}", clients, median(latencies) * MS)
                p95s.add(f"p95, {label}", clients, p95(latencies) * MS)
    note = (
        f"tiny async jobs (create with PHASE=RUN, WAIT, fetch), "
        f"max({bench.reps(100, 40)}, 4 x clients) jobs per round, {reps} round(s)"
        " per point; bars: smallest..largest round"
    )
    return [
        Curve(
            name="throughput_by_clients",
            title="Tiny-job throughput against concurrent clients",
            xlabel="concurrent clients",
            ylabel="jobs/s",
            series=rates.series(),
            note=note,
        ),
        Curve(
            name="latency_by_clients",
            title="Tiny-job latency against concurrent clients",
            xlabel="concurrent clients",
            ylabel="ms per job (submission to downloaded)",
            series={**latency.series(), **p95s.series()},
            ylog=True,
            note=note,
        ),
        Curve(
            name="cpu_per_job_by_clients",
            title="CPU time per tiny job against concurrent clients (lean clients)",
            xlabel="concurrent clients",
            ylabel="CPU ms per job",
            series=cpu.series(),
            note=note + "; server: all its processes; client: the lean clients",
        ),
    ]

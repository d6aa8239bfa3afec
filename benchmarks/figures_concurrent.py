"""Group ``concurrent`` (issue 17, target 6): big BINARY2 jobs submitted
together, against one such job times their number over the runner slots that
can run at once, with the CPU per job of every process (the bound on the cores).
"""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
from figures_bulk import _big_job, copy_seconds
from figures_latency import MS, Bench, CpuMeter
from report import Figure, Target, median, summary

__all__ = ["TOGETHER", "runner_slots_at_once", "together_figure"]

#: Big BINARY2 jobs submitted together (issue 17, target 6).
TOGETHER = 4


def runner_slots_at_once(bench: Bench) -> int:
    """Runner slots that can run at once on the cores: the service's slots (each
    server process has ``tap_slots``), at most one per core."""
    slots = int(os.environ.get("AIOUWS_TAP_SLOTS", "2")) * bench.workers
    return max(1, min(slots, os.cpu_count() or 1))


async def together_figure(bench: Bench, session: aiohttp.ClientSession) -> list[Figure]:
    """Target 6: TOGETHER BINARY2 jobs of all rows submitted at once, until the
    last is downloaded, against TOGETHER x one such job (measured alternately
    in the same run) / the runner slots that can run at once on the cores."""
    at_once = runner_slots_at_once(bench)
    maxrec = 2 * bench.rows
    singles: list[float] = []
    together: list[float] = []
    copies: list[float] = []
    # CPU ms per job of each process group, for one job alone and for the
    # jobs run together: the bound of the figure is their sum over the cores.
    cpu_one: list[dict[str, float]] = []
    cpu_together: list[dict[str, float]] = []
    for _ in range(bench.reps(3, 1)):
        copies.append(await asyncio.to_thread(copy_seconds, bench.dsn, "demo.stars"))
        meter = CpuMeter(bench)
        single = await _big_job(session, bench, "demo.stars", "votable", maxrec)
        cpu_one.append(meter.per_op(1))
        singles.append(single["total"])
        meter = CpuMeter(bench)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                _big_job(session, bench, "demo.stars", "votable", maxrec)
                for _ in range(TOGETHER)
            )
        )
        together.append(time.perf_counter() - start)
        cpu_together.append(meter.per_op(TOGETHER))
    one = median(singles)
    cpu_ms = {key: median([c[key] for c in cpu_one]) for key in cpu_one[0]}
    cores = os.cpu_count() or 1
    return [
        Figure(
            name=f"6 {TOGETHER} x {bench.rows:,} rows BINARY2 submitted together",
            value=median(together),
            unit="s",
            floor=TOGETHER * one / at_once,
            floor_name=f"{TOGETHER}x1/{at_once}",
            target=Target(1.2, of_floor=True),
            details={
                "together_s": summary(together),
                "one_job_s": summary(singles),
                "slots_at_once": at_once,
                "copy_s": summary(copies),
                "cpu_ms_per_job_alone": cpu_ms,
                "cpu_ms_per_job_together": {
                    key: median([c[key] for c in cpu_together])
                    for key in cpu_together[0]
                },
                # The CPU the jobs need spread over every core: no schedule
                # of them can end sooner.
                "cpu_bound_s": round(TOGETHER * sum(cpu_ms.values()) / MS / cores, 3),
            },
            note=(
                "CPU ms per job alone: "
                + ", ".join(
                    f"{k.removesuffix('_cpu_ms')} {v:g}" for k, v in cpu_ms.items()
                )
                + f"; {TOGETHER} x that / {cores} cores ="
                f" {TOGETHER * sum(cpu_ms.values()) / MS / cores:.2f} s"
            ),
        )
    ]

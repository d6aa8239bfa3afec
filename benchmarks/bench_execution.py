"""Job execution benchmark: queue→completion latency, throughput, abort→slot free.

Runs on its own: ``python benchmarks/bench_execution.py [--jobs N] [--slots N]``.
It starts a throwaway PostgreSQL cluster (fsync off), installs the schema, runs a
QueueSupervisor with warm runners of a do-nothing job kind, prints a table and
writes JSON to ``benchmarks/results/``. Completions are observed through
LISTEN/NOTIFY, so no polling interval inflates the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def noop(ctx: object) -> None:
    """The do-nothing job (the runner imports only this module's top level)."""


def deaf(ctx: Any) -> None:
    """A job that ignores cancellation (killed after grace)."""
    time.sleep(3600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    """A supervisor on a fresh database, with completion futures fed by NOTIFY."""

    def __init__(self, store: Any, supervisor: Any, listener: Any) -> None:
        self.store = store
        self.supervisor = supervisor
        self._waiting: dict[str, asyncio.Future[float]] = {}
        listener.subscribe(self._on_event)

    def _on_event(self, event: Any) -> None:
        from aiouws.phases import FINAL_PHASES

        future = self._waiting.get(event.job_id)
        if future is not None and event.phase in FINAL_PHASES and not future.done():
            future.set_result(time.perf_counter())

    async def submit(self, kind: str) -> tuple[str, asyncio.Future[float]]:
        from aiouws.models import NewJob
        from aiouws.phases import Phase

        job_id = secrets.token_urlsafe(16)
        future = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        await self.store.create(
            NewJob(
                job_id=job_id,
                kind=kind,
                owner="bench",
                run_id=None,
                execution_duration=0,
                destruction_time=datetime.now(UTC) + timedelta(days=1),
            ),
            phase=Phase.QUEUED,
        )
        return job_id, future

    async def run_one(self, kind: str = "noop") -> tuple[float, float]:
        """(queued→handed over, queued→COMPLETED seen) in seconds, for one job."""
        job_id, future = await self.submit(kind)
        start = time.perf_counter()
        await self.supervisor.job_queued(kind, job_id)
        handed = time.perf_counter()
        done = await asyncio.wait_for(future, 60)
        del self._waiting[job_id]
        return handed - start, done - start


async def latency(bench: Bench, n: int) -> dict[str, float]:
    for _ in range(10):  # warm up connections and code paths
        await bench.run_one()
    handover, complete = [], []
    for _ in range(n):
        h, c = await bench.run_one()
        handover.append(h)
        complete.append(c)
    return {
        "handover_median_ms": statistics.median(handover) * 1e3,
        "complete_median_ms": statistics.median(complete) * 1e3,
        "complete_p90_ms": statistics.quantiles(complete, n=10)[-1] * 1e3,
    }


async def throughput(bench: Bench, submitters: int, per_submitter: int) -> float:
    async def submitter() -> None:
        for _ in range(per_submitter):
            await bench.run_one()

    start = time.perf_counter()
    await asyncio.gather(*(submitter() for _ in range(submitters)))
    return submitters * per_submitter / (time.perf_counter() - start)


async def abort_to_free(bench: Bench, kind: str, n: int) -> float:
    """Median seconds from the ABORT write to job_aborted() returning."""
    from aiouws.phases import Phase

    times = []
    for _ in range(n):
        job_id, _future = await bench.submit(kind)
        await bench.supervisor.job_queued(kind, job_id)
        await asyncio.sleep(0.05)  # let the job code start
        start = time.perf_counter()
        await bench.store.change_phase(
            job_id, Phase.ABORTED, allowed=(Phase.EXECUTING,)
        )
        await bench.supervisor.job_aborted(job_id)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@asynccontextmanager
async def environment(slots: int, grace: float) -> AsyncIterator[Bench]:
    import asyncpg

    from aiouws.config import Settings
    from aiouws.demo import DEMO_KIND
    from aiouws.execution.supervisor import QueueSupervisor
    from aiouws.kinds import JobKind
    from aiouws.storage.notify import PhaseListener
    from aiouws.storage.pgcluster import EmbeddedCluster
    from aiouws.storage.schema import init_connection, install_schema
    from aiouws.storage.store import JobStore
    from aiouws.workdir import JobDirs

    root = Path(tempfile.mkdtemp(prefix="aiouws-bench-"))
    os.chmod(root, 0o755)
    cluster = EmbeddedCluster(root / "pg", port=_free_port(), fast_unsafe=True)
    dsn = cluster.ensure_running()
    env = {"PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE)])}
    kinds = {
        "noop": JobKind(
            name="noop", entry_point="bench_execution:noop", runner_env=env
        ),
        "deaf": JobKind(
            name="deaf", entry_point="bench_execution:deaf", slots=1, runner_env=env
        ),
        "demo": DEMO_KIND,
    }
    pool = await asyncpg.create_pool(dsn, min_size=4, max_size=30, init=init_connection)
    listener = PhaseListener(lambda: asyncpg.connect(dsn))
    supervisor = None
    try:
        async with pool.acquire() as conn:
            await install_schema(conn)
        await listener.start()
        settings = Settings(
            data_dir=root, jobs_dir=root / "jobs", slots_per_kind=slots, grace=grace
        )
        store = JobStore(pool)
        supervisor = QueueSupervisor(
            store, kinds, JobDirs(root / "jobs"), settings, listener
        )
        await supervisor.start()
        yield Bench(store, supervisor, listener)
    finally:
        if supervisor is not None:
            await supervisor.stop(grace=0)
        await listener.stop()
        await pool.close()
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with environment(args.slots, args.grace) as bench:
        figures: dict[str, Any] = {"slots_per_kind": args.slots, "grace_s": args.grace}
        figures.update(await latency(bench, args.jobs))
        figures["jobs_per_s_20_submitters"] = await throughput(
            bench, 20, max(1, args.jobs // 20)
        )
        figures["abort_to_free_cooperative_ms"] = (
            await abort_to_free(bench, "demo", 10) * 1e3
        )
        figures["abort_to_free_kill_ms"] = await abort_to_free(bench, "deaf", 3) * 1e3
    return figures


def report(figures: dict[str, Any]) -> None:
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:10.2f}" if isinstance(value, float) else f"{value:>10}"
        print(f"{key:<{width}}  {shown}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = RESULTS / f"bench_execution-{stamp}.json"
    out.write_text(
        json.dumps({"when": stamp, "cpus": os.cpu_count(), **figures}, indent=2)
    )
    print(f"written {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--grace", type=float, default=0.5)
    report(asyncio.run(main(parser.parse_args())))

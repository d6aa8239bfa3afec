"""QueueSupervisor with real runner processes on a real PostgreSQL: running and
claiming jobs.

Jobs are created directly through the store (helpers: supervisorkit.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
from supervisorkit import (
    KINDS,
    NOTIFY_BOUND,
    Factory,
    count_executing,
    log_lines,
    queue_wait,
    submit,
    wait_final,
)

from aiouws.config import Settings
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

# -- running ---------------------------------------------------------------------


async def test_job_queued_hands_over_before_returning(
    store: JobStore, supervisor: QueueSupervisor, dirs: JobDirs
) -> None:
    job = await submit(store, action="results", k="3")
    await supervisor.job_queued("scripted")
    running = await store.get(job.job_id)
    assert running.phase in (Phase.EXECUTING, Phase.COMPLETED)
    assert running.runner_pid is not None
    assert running.claimed_by == supervisor.leases.instance_id
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.COMPLETED
    assert [r.id for r in done.results] == ["r0", "r1", "r2"]
    assert (dirs.path(job.job_id) / "r1.txt").read_text() == "result 1\n"
    assert done.results[1].size == len("result 1\n")
    assert ("action", "results") in done.job_info
    assert done.end_time is not None and done.start_time is not None


class CountingStore(JobStore):
    """The real store, counting the claim statements it runs."""

    claims = 0

    async def claim_for_runners(self, *args: Any, **kwargs: Any) -> list[Job]:
        self.claims += 1
        return await super().claim_for_runners(*args, **kwargs)


async def test_a_job_queued_here_is_claimed_with_one_statement(
    pool: asyncpg.Pool, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> None:
    """The job's own QUEUED NOTIFY, arriving after the claim, is no news."""
    store = CountingStore(pool)
    settings = Settings(data_dir=tmp_path, jobs_dir=dirs.root, slots_per_kind=2)
    sup = QueueSupervisor(store, KINDS, dirs, settings, listener)
    await sup.start()
    at_start = store.claims  # one per kind
    try:
        for _ in range(5):
            job = await submit(store, action="results", k="1")
            await sup.job_queued("scripted", job.job_id)
            assert (await wait_final(store, job.job_id)).phase is Phase.COMPLETED
        await asyncio.sleep(0.5)  # time for any NOTIFY to arrive and act
        assert store.claims - at_start == 5
        # A job queued by another process (NOTIFY only) is still claimed.
        other = await submit(store, action="results", k="1")
        done = await wait_final(store, other.job_id)
        assert done.phase is Phase.COMPLETED
        assert queue_wait(done) < NOTIFY_BOUND, "claimed by the poll, not the NOTIFY"
        assert store.claims - at_start == 6
    finally:
        await sup.stop(grace=0)


async def test_notify_alone_dispatches(
    store: JobStore, supervisor: QueueSupervisor
) -> None:
    job = await submit(store, action="sleep", seconds="0")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.COMPLETED
    assert queue_wait(done) < NOTIFY_BOUND, "claimed by the poll, not the NOTIFY"


async def test_queue_order_with_one_slot(
    store: JobStore, supervisor: QueueSupervisor, tmp_path: Path
) -> None:
    log = tmp_path / "order.log"
    jobs = [
        await submit(store, "serial", action="sleep", seconds="0.02", log=str(log))
        for _ in range(6)
    ]
    await supervisor.job_queued("serial")
    for job in jobs:
        assert (await wait_final(store, job.job_id)).phase is Phase.COMPLETED
    starts = [j for w, j in log_lines(log) if w == "start"]
    assert starts == [job.job_id for job in jobs]


async def test_concurrency_cap(
    store: JobStore, supervisor: QueueSupervisor, tmp_path: Path
) -> None:
    log = tmp_path / "cap.log"
    jobs = [
        await submit(store, action="sleep", seconds="0.1", log=str(log))
        for _ in range(8)
    ]
    await supervisor.job_queued("scripted")
    assert await count_executing(store, "scripted") == 2
    for job in jobs:
        assert (await wait_final(store, job.job_id)).phase is Phase.COMPLETED
    running = peak = 0
    for what, _job in log_lines(log):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 2


async def test_two_supervisors_never_share_a_job(
    store: JobStore, make_supervisor: Factory, tmp_path: Path
) -> None:
    first = await make_supervisor(instance_id="first")
    second = await make_supervisor(instance_id="second")
    log = tmp_path / "shared.log"
    jobs = [
        await submit(store, action="sleep", seconds="0.02", log=str(log))
        for _ in range(24)
    ]
    await asyncio.gather(first.job_queued("scripted"), second.job_queued("scripted"))
    finished = [await wait_final(store, job.job_id) for job in jobs]
    assert {j.phase for j in finished} == {Phase.COMPLETED}
    starts = [j for w, j in log_lines(log) if w == "start"]
    assert sorted(starts) == sorted(job.job_id for job in jobs)
    assert {j.claimed_by for j in finished} <= {"first", "second"}


async def test_async_job_completes(
    store: JobStore, supervisor: QueueSupervisor
) -> None:
    job = await submit(store, "async", seconds="0")
    await supervisor.job_queued("async")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.COMPLETED
    assert [r.id for r in done.results] == ["result"]
    assert ("mode", "async") in done.job_info

"""Shared helpers of the QueueSupervisor tests: job kinds, submitting, waiting.

Outcomes are awaited with bounded polling loops; the timeouts only guard against
hangs, nothing asserts on time. The fixtures (listener, dirs, make_supervisor,
supervisor) are in this directory's conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiouws.execution.supervisor import QueueSupervisor
from aiouws.kinds import JobKind
from aiouws.models import Job, JobFilter, JobParameter, NewJob
from aiouws.phases import FINAL_PHASES, Phase
from aiouws.storage.store import JobStore

JOBKINDS = Path(__file__).resolve().parents[1] / "jobkinds"
REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), str(JOBKINDS)])}

SCRIPTED = JobKind(name="scripted", entry_point="scripted:run", runner_env=ENV)
SERIAL = JobKind(name="serial", entry_point="scripted:run", slots=1, runner_env=ENV)
ASYNC = JobKind(name="async", entry_point="scripted:run_async", slots=1, runner_env=ENV)
KINDS = {k.name: k for k in (SCRIPTED, SERIAL, ASYNC)}

GUARD = 60.0  # seconds; only a hang guard

Factory = Callable[..., Awaitable[QueueSupervisor]]


async def submit(
    store: JobStore,
    kind: str = "scripted",
    *,
    duration: int = 0,
    destruction: timedelta = timedelta(days=1),
    supervisor: QueueSupervisor | None = None,
    **params: str,
) -> Job:
    """A QUEUED job; admitted by ``supervisor`` first, as the service does (the
    test then dispatches it with job_queued, as ``admission.start`` would)."""
    job_id = secrets.token_urlsafe(16)
    parameters = tuple(JobParameter(name=k, value=v) for k, v in params.items())
    new = NewJob(
        job_id=job_id,
        kind=kind,
        owner="tester",
        run_id=None,
        execution_duration=duration,
        destruction_time=datetime.now(UTC) + destruction,
        parameters=parameters,
    )
    if supervisor is None:
        return await store.create(new, phase=Phase.QUEUED)
    admission = supervisor.admit(kind, job_id, parameters, new_job=False)
    job = await admission.store(lambda _: store.create(new, phase=Phase.QUEUED))
    assert job is not None
    return job


#: Seconds a job queued elsewhere may wait for its claim: far below the
#: supervisor's 5 s safety poll, so only the job's NOTIFY can meet it.
NOTIFY_BOUND = 1.0


def queue_wait(job: Job) -> float:
    """Seconds from the job's queueing to its start (database times)."""
    assert job.queued_time is not None and job.start_time is not None
    return (job.start_time - job.queued_time).total_seconds()


async def wait_for(store: JobStore, job_id: str, phases: Iterable[Phase]) -> Job:
    wanted = frozenset(phases)
    async with asyncio.timeout(GUARD):
        while True:
            job = await store.get(job_id)
            if job.phase in wanted:
                return job
            await asyncio.sleep(0.02)


async def wait_final(store: JobStore, job_id: str) -> Job:
    return await wait_for(store, job_id, FINAL_PHASES)


def has_line(log: Path, line_start: str) -> bool:
    return log.exists() and any(
        line.startswith(line_start) for line in log.read_text().splitlines()
    )


async def wait_line(log: Path, line_start: str) -> None:
    """Wait for a line a job (another process) writes; bounded polling."""
    async with asyncio.timeout(GUARD):
        while not has_line(log, line_start):  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def log_lines(log: Path) -> list[tuple[str, str]]:
    if not log.exists():
        return []
    rows = (line.split() for line in log.read_text().splitlines())
    return [(what, job_id) for what, job_id, _pid in rows]


async def count_executing(store: JobStore, kind: str) -> int:
    refs = await store.list_jobs(
        JobFilter(
            owner=None, all_owners=True, phases=frozenset({Phase.EXECUTING}), kind=kind
        )
    )
    return len(refs)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

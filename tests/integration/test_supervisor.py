"""QueueSupervisor with real runner processes on a real PostgreSQL.

Jobs are created directly through the store. Outcomes are awaited with bounded
polling loops; the timeouts only guard against hangs, nothing asserts on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from aiouws.config import Settings
from aiouws.errors import JobNotFound
from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane, JobKind
from aiouws.models import Job, JobFilter, JobParameter, NewJob
from aiouws.notify import PhaseListener
from aiouws.phases import FINAL_PHASES, Phase
from aiouws.progress import estimate_quote
from aiouws.reaper import cleanup
from aiouws.store import JobStore
from aiouws.supervisor import LEASE_EXPIRED_MESSAGE, QueueSupervisor
from aiouws.workdir import JobDirs

JOBKINDS = Path(__file__).resolve().parents[1] / "jobkinds"
REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO), str(JOBKINDS)])}

SCRIPTED = JobKind(name="scripted", entry_point="scripted:run", runner_env=ENV)
SERIAL = JobKind(name="serial", entry_point="scripted:run", slots=1, runner_env=ENV)
ASYNC = JobKind(name="async", entry_point="scripted:run_async", slots=1, runner_env=ENV)
KINDS = {k.name: k for k in (SCRIPTED, SERIAL, ASYNC)}

GUARD = 60.0  # seconds; only a hang guard

Factory = Callable[..., Awaitable[QueueSupervisor]]


@pytest.fixture
async def listener(db_dsn: str) -> AsyncIterator[PhaseListener]:
    lst = PhaseListener(lambda: asyncpg.connect(db_dsn))
    await lst.start()
    yield lst
    await lst.stop()


@pytest.fixture
def dirs(tmp_path: Path) -> JobDirs:
    return JobDirs(tmp_path / "jobs")


@pytest.fixture
async def make_supervisor(
    store: JobStore, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> AsyncIterator[Factory]:
    made: list[QueueSupervisor] = []

    async def make(
        *,
        instance_id: str | None = None,
        grace: float = 0.5,
        slots: int = 2,
        start: bool = True,
    ) -> QueueSupervisor:
        settings = Settings(
            data_dir=tmp_path, jobs_dir=dirs.root, grace=grace, slots_per_kind=slots
        )
        sup = QueueSupervisor(
            store, KINDS, dirs, settings, listener, instance_id=instance_id
        )
        made.append(sup)
        if start:
            await sup.start()
        return sup

    yield make
    for sup in made:
        if sup._started:
            await sup.stop(grace=0)


@pytest.fixture
async def supervisor(make_supervisor: Factory) -> QueueSupervisor:
    return await make_supervisor()


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
        assert (await wait_final(store, other.job_id)).phase is Phase.COMPLETED
        assert store.claims - at_start == 6
    finally:
        await sup.stop(grace=0)


async def test_notify_alone_dispatches(
    store: JobStore, supervisor: QueueSupervisor
) -> None:
    job = await submit(store, action="sleep", seconds="0")
    assert (await wait_final(store, job.job_id)).phase is Phase.COMPLETED


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


# -- aborting --------------------------------------------------------------------


async def test_abort_queued_and_executing(
    store: JobStore, supervisor: QueueSupervisor, tmp_path: Path
) -> None:
    log = tmp_path / "abort.log"
    first = await submit(store, "serial", action="sleep", seconds="60", log=str(log))
    second = await submit(store, "serial", action="sleep", seconds="0", log=str(log))
    await supervisor.job_queued("serial")
    await wait_line(log, "start")
    await store.change_phase(second.job_id, Phase.ABORTED)
    await supervisor.job_aborted(second.job_id)  # not running: returns at once
    await store.change_phase(first.job_id, Phase.ABORTED, allowed=(Phase.EXECUTING,))
    await supervisor.job_aborted(first.job_id)
    assert first.job_id not in supervisor._running
    third = await submit(store, "serial", action="sleep", seconds="0", log=str(log))
    await supervisor.job_queued("serial")
    assert (await wait_final(store, third.job_id)).phase is Phase.COMPLETED
    assert (await store.get(first.job_id)).phase is Phase.ABORTED
    assert (await store.get(second.job_id)).phase is Phase.ABORTED
    starts = [j for w, j in log_lines(log) if w == "start"]
    assert starts == [first.job_id, third.job_id]
    assert ("end", first.job_id) not in log_lines(log)


async def test_abort_by_another_process_via_notify(
    store: JobStore, supervisor: QueueSupervisor, tmp_path: Path
) -> None:
    log = tmp_path / "notify.log"
    job = await submit(store, "async", seconds="60", log=str(log))
    await supervisor.job_queued("async")
    await wait_line(log, "start")
    await store.change_phase(job.job_id, Phase.ABORTED, allowed=(Phase.EXECUTING,))
    await wait_line(log, "cancelled")
    follow = await submit(store, "async", seconds="0")
    assert (await wait_final(store, follow.job_id)).phase is Phase.COMPLETED
    assert (await store.get(job.job_id)).phase is Phase.ABORTED


async def test_job_ignoring_cancel_is_killed_after_grace(
    store: JobStore, supervisor: QueueSupervisor, tmp_path: Path
) -> None:
    log = tmp_path / "deaf.log"
    job = await submit(
        store, "serial", action="ignore_cancel", seconds="120", log=str(log)
    )
    await supervisor.job_queued("serial")
    await wait_line(log, "start")
    old_pid = (await store.get(job.job_id)).runner_pid
    assert old_pid is not None
    await store.change_phase(job.job_id, Phase.ABORTED, allowed=(Phase.EXECUTING,))
    await supervisor.job_aborted(job.job_id)
    assert not pid_alive(old_pid)
    after = await submit(store, "serial", action="sleep", seconds="0")
    await supervisor.job_queued("serial")
    done = await wait_final(store, after.job_id)
    assert done.phase is Phase.COMPLETED and done.runner_pid != old_pid
    assert (await store.get(job.job_id)).phase is Phase.ABORTED


async def test_execution_duration_exceeded(
    store: JobStore, supervisor: QueueSupervisor
) -> None:
    job = await submit(store, action="sleep", seconds="60", duration=1)
    await supervisor.job_queued("scripted")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.ABORTED
    assert done.error is not None
    assert done.error.message == "execution duration of 1 s exceeded"


# -- failures --------------------------------------------------------------------


async def test_exception_is_error_with_detail(
    store: JobStore, dirs: JobDirs, supervisor: QueueSupervisor
) -> None:
    job = await submit(store, action="fail", message="boom")
    await supervisor.job_queued("scripted")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.ERROR
    assert done.error is not None and done.error.message == "boom"
    assert done.error.has_detail
    detail = (dirs.path(job.job_id) / "error.txt").read_text()
    assert "RuntimeError: boom" in detail and "Traceback" in detail


@pytest.mark.parametrize(
    ("action", "how"),
    [("sigkill", "signal 9"), ("segfault", "signal 11"), ("exit", "exit code 3")],
)
async def test_runner_death_is_error_and_runner_replaced(
    store: JobStore, supervisor: QueueSupervisor, action: str, how: str
) -> None:
    job = await submit(store, "serial", action=action)
    await supervisor.job_queued("serial")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.ERROR
    assert done.error is not None and done.error.message == f"runner died ({how})"
    after = await submit(store, "serial", action="sleep", seconds="0")
    await supervisor.job_queued("serial")
    served = await wait_final(store, after.job_id)
    assert served.phase is Phase.COMPLETED and served.runner_pid != done.runner_pid


# -- crash recovery --------------------------------------------------------------


async def test_expired_leases_resolved_live_ones_kept(
    store: JobStore, make_supervisor: Factory
) -> None:
    dead = await submit(store)
    assert await store.claim_for_runners("scripted", "dead-server", -5, [1])
    alive = await submit(store)
    assert await store.claim_for_runners("scripted", "live-server", 300, [1])
    mine = await submit(store)
    assert await store.claim_for_runners("scripted", "me", 300, [1])
    await make_supervisor(instance_id="me")
    lost = await store.get(dead.job_id)
    assert lost.phase is Phase.ERROR
    assert lost.error is not None and lost.error.message == LEASE_EXPIRED_MESSAGE
    assert (await store.get(alive.job_id)).phase is Phase.EXECUTING
    restarted = await store.get(mine.job_id)
    assert restarted.phase is Phase.ERROR and restarted.error is not None


async def test_heartbeat_keeps_lease_alive(
    store: JobStore, make_supervisor: Factory
) -> None:
    sup = await make_supervisor(start=False)
    sup.leases.lease_seconds = 0.6
    await sup.start()
    job = await submit(store, action="sleep", seconds="1.5")
    await sup.job_queued("scripted")
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.COMPLETED


# -- destruction and cleanup -----------------------------------------------------


async def test_destruction_removes_row_and_directory(
    store: JobStore, dirs: JobDirs, supervisor: QueueSupervisor
) -> None:
    finished = await submit(store, action="results", k="1")
    await supervisor.job_queued("scripted")
    await wait_final(store, finished.job_id)
    running = await submit(store, action="sleep", seconds="60")
    await supervisor.job_queued("scripted")
    await wait_for(store, running.job_id, [Phase.EXECUTING])
    assert dirs.path(finished.job_id).exists()
    past = datetime.now(UTC) - timedelta(seconds=1)
    for job in (finished, running):
        await store.update(
            job.job_id, allowed=list(Phase), what="expire", destruction_time=past
        )
    supervisor.destruction.wake()
    async with asyncio.timeout(GUARD):
        while running.job_id in supervisor._running:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        while dirs.path(finished.job_id).exists():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    for job in (finished, running):
        with pytest.raises(JobNotFound):
            await store.get(job.job_id)
        assert not dirs.path(job.job_id).exists()


async def test_cleanup_failed_keeps_completed(
    store: JobStore, dirs: JobDirs, supervisor: QueueSupervisor
) -> None:
    good = await submit(store, action="sleep", seconds="0")
    bad = await submit(store, action="fail")
    await supervisor.job_queued("scripted")
    await wait_final(store, good.job_id)
    await wait_final(store, bad.job_id)
    assert await cleanup(store, dirs, failed=True) == 1
    assert (await store.get(good.job_id)).phase is Phase.COMPLETED
    with pytest.raises(JobNotFound):
        await store.get(bad.job_id)


# -- shutdown and quote ----------------------------------------------------------


async def test_graceful_stop(
    store: JobStore, make_supervisor: Factory, tmp_path: Path
) -> None:
    sup = await make_supervisor(grace=5.0)
    log = tmp_path / "stop.log"
    short = await submit(store, action="sleep", seconds="0.3", log=str(log))
    long = await submit(store, action="sleep", seconds="600", log=str(log))
    await sup.job_queued("scripted")
    await wait_line(log, "start")
    pids = [
        s.runner.pid for slots in sup.slots.queue.values() for s in slots if s.runner
    ]
    await sup.stop(grace=1.5)
    assert (await store.get(short.job_id)).phase is Phase.COMPLETED
    aborted = await store.get(long.job_id)
    assert aborted.phase is Phase.ABORTED
    assert aborted.error is not None and aborted.error.message == "service shut down"
    assert not any(pid_alive(pid) for pid in pids)
    queued = await submit(store, action="sleep", seconds="0")
    await sup.job_queued("scripted")  # a stopped supervisor claims nothing
    assert (await store.get(queued.job_id)).phase is Phase.QUEUED


async def test_quote(store: JobStore, supervisor: QueueSupervisor) -> None:
    waiting = await store.create(
        NewJob(
            job_id=secrets.token_urlsafe(16),
            kind="scripted",
            owner=None,
            run_id=None,
            execution_duration=0,
            destruction_time=datetime.now(UTC) + timedelta(days=1),
        )
    )
    assert await estimate_quote(store, waiting, 2) is None  # no history yet
    for _ in range(2):
        job = await submit(store, action="sleep", seconds="0.05")
        await supervisor.job_queued("scripted")
        await wait_final(store, job.job_id)
    quote = await estimate_quote(store, waiting, 2)
    assert quote is not None and quote > datetime.now(UTC) - timedelta(seconds=1)


# -- inline lane -------------------------------------------------------------------

_release_stubborn = asyncio.Event()


async def _inline_job(ctx: JobContext) -> None:
    """Quick, or (parameter mode=stubborn) ignoring cancellation until released."""
    if ctx.parameters.get("mode") != "stubborn":
        ctx.add_result("r", b"inline\n", "text/plain", file_name="r.txt")
        return
    while not _release_stubborn.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.05)


INLINE = JobKind(
    name="inline",
    entry_point="scripted:run",
    slots=1,
    runner_env=ENV,
    inline=InlineLane(
        accepts=lambda params: any(p.name == "mode" for p in params),
        run=_inline_job,
        slots=1,
    ),
)


async def test_inline_lane_runs_accepted_jobs_in_process_and_abandons_stuck_ones(
    store: JobStore, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, jobs_dir=dirs.root, grace=0.3)
    sup = QueueSupervisor(store, {"inline": INLINE}, dirs, settings, listener)
    await sup.start()
    try:
        quick = await submit(store, "inline", supervisor=sup, mode="quick")
        await sup.job_queued("inline", quick.job_id, quick.parameters)
        done = await wait_final(store, quick.job_id)
        assert done.phase is Phase.COMPLETED and done.runner_pid == os.getpid()
        assert (dirs.path(quick.job_id) / "r.txt").read_text() == "inline\n"
        # Not accepted: a runner process runs it.
        other = await submit(store, "inline", supervisor=sup, action="results", k="1")
        await sup.job_queued("inline", other.job_id, other.parameters)
        done = await wait_final(store, other.job_id)
        assert done.phase is Phase.COMPLETED and done.runner_pid != os.getpid()
        # A job that ignores cancellation is abandoned after the grace; the lane's
        # slot gets a fresh in-process runner and takes the next job.
        stuck = await submit(store, "inline", supervisor=sup, mode="stubborn")
        await sup.job_queued("inline", stuck.job_id, stuck.parameters)
        await wait_for(store, stuck.job_id, [Phase.EXECUTING])
        await store.change_phase(stuck.job_id, Phase.ABORTED, allowed=[Phase.EXECUTING])
        await sup.job_aborted(stuck.job_id)
        after = await submit(store, "inline", supervisor=sup, mode="quick")
        async with asyncio.timeout(GUARD):
            while (await store.get(after.job_id)).phase is Phase.QUEUED:
                await sup.job_queued("inline", after.job_id, after.parameters)
                await asyncio.sleep(0.05)
        done = await wait_final(store, after.job_id)
        assert done.phase is Phase.COMPLETED and done.runner_pid == os.getpid()
        assert (await store.get(stuck.job_id)).phase is Phase.ABORTED
    finally:
        _release_stubborn.set()
        await sup.stop(grace=0)

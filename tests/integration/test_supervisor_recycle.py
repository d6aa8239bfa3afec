"""QueueSupervisor: a runner grown past ``runner_max_rss`` is replaced.

Real runner processes (the scripted kind's ``hog`` action keeps memory for the
runner's life). The retired runner must exit and be reaped, the next job must
take a warm runner, and no job may be lost; with the bound 0 nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from supervisorkit import GUARD, KINDS, pid_alive, submit, wait_final

from aiouws.config import Settings
from aiouws.execution.runnerpool import resident_bytes
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

MIB = 1024 * 1024
#: The bound of these tests, MiB: far above an idle scripted runner (about
#: 20-30 MiB), far below one that keeps a ``hog`` job's 96 MB.
BOUND = 64
HOG = {"action": "hog", "mb": "96"}

Make = Callable[[int], Awaitable[QueueSupervisor]]


@pytest.fixture
async def make(
    store: JobStore, dirs: JobDirs, listener: PhaseListener, tmp_path: Path
) -> AsyncIterator[Make]:
    made: list[QueueSupervisor] = []

    async def build(max_rss: int) -> QueueSupervisor:
        settings = Settings(
            data_dir=tmp_path, jobs_dir=dirs.root, grace=0.5, runner_max_rss=max_rss
        )
        sup = QueueSupervisor(store, KINDS, dirs, settings, listener)
        made.append(sup)
        await sup.start()
        return sup

    yield build
    for sup in made:
        await sup.stop(grace=0)


async def run(store: JobStore, sup: QueueSupervisor, kind: str, **params: str) -> Job:
    job = await submit(store, kind, supervisor=sup, **params)
    await sup.job_queued(kind, job.job_id)
    done = await wait_final(store, job.job_id)
    assert done.phase is Phase.COMPLETED, done.error_message
    assert done.runner_pid is not None
    return done


def slot_pid(sup: QueueSupervisor, kind: str) -> int:
    (slot,) = sup.slots.queue[kind]
    assert slot.runner is not None
    return slot.runner.pid


async def gone(pid: int) -> None:
    """Wait until ``pid`` has exited and been reaped (a zombie still answers
    signal 0 and keeps its /proc entry)."""
    async with asyncio.timeout(GUARD):
        while pid_alive(pid) or Path(f"/proc/{pid}").exists():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_grown_runner_is_replaced_by_a_warm_one(
    store: JobStore, make: Make
) -> None:
    sup = await make(BOUND)
    before = slot_pid(sup, "serial")
    rss = resident_bytes(before)
    assert rss is not None and rss < BOUND * MIB  # idle: under the bound
    hog = await run(store, sup, "serial", **HOG)
    assert hog.runner_pid == before
    await gone(before)  # retired: exited, reaped
    successor = slot_pid(sup, "serial")
    assert successor != before and pid_alive(successor)
    # The next job takes the successor, warm already (no start on its path).
    after = await run(store, sup, "serial", action="sleep", seconds="0")
    assert after.runner_pid == successor
    rss = resident_bytes(successor)
    assert rss is not None and rss < BOUND * MIB
    # A small job leaves it under the bound: it stays.
    await asyncio.sleep(0.3)
    assert slot_pid(sup, "serial") == successor


async def test_the_next_job_prefers_a_fresh_runner(store: JobStore, make: Make) -> None:
    """While the retired runner's successor starts, a job goes to another warm
    runner of its kind, not to the retired one."""
    sup = await make(BOUND)
    hog = await run(store, sup, "scripted", **HOG)
    assert hog.runner_pid is not None
    after = await run(store, sup, "scripted", action="sleep", seconds="0")
    assert after.runner_pid != hog.runner_pid
    await gone(hog.runner_pid)
    pids = {s.runner.pid for s in sup.slots.queue["scripted"] if s.runner}
    assert len(pids) == 2 and hog.runner_pid not in pids


async def test_jobs_queued_behind_a_hog_all_run(store: JobStore, make: Make) -> None:
    """One slot, a hog and three jobs queued behind it: none is lost or held
    back while the successor starts (the retired runner still takes them)."""
    sup = await make(BOUND)
    first = slot_pid(sup, "serial")
    jobs = [await submit(store, "serial", supervisor=sup, **HOG)]
    jobs += [
        await submit(store, "serial", supervisor=sup, action="sleep", seconds="0")
        for _ in range(3)
    ]
    await sup.job_queued("serial")
    done = [await wait_final(store, job.job_id) for job in jobs]
    assert [d.phase for d in done] == [Phase.COMPLETED] * 4
    assert done[0].runner_pid == first
    await gone(first)
    last = slot_pid(sup, "serial")
    assert last != first and pid_alive(last)
    rss = resident_bytes(last)
    assert rss is not None and rss < BOUND * MIB


async def test_bound_zero_keeps_the_runner(store: JobStore, make: Make) -> None:
    sup = await make(0)
    hog = await run(store, sup, "serial", **HOG)
    rss = resident_bytes(slot_pid(sup, "serial"))
    assert rss is not None and rss > BOUND * MIB  # grown past what would retire it
    after = await run(store, sup, "serial", action="sleep", seconds="0")
    assert after.runner_pid == hog.runner_pid == slot_pid(sup, "serial")


async def test_stop_closes_a_waiting_successor(store: JobStore, make: Make) -> None:
    """A successor started while its slot is busy waits beside it; stopping
    the supervisor ends both."""
    sup = await make(BOUND)
    first = slot_pid(sup, "serial")
    await run(store, sup, "serial", **HOG)
    job = await submit(store, "serial", supervisor=sup, action="sleep", seconds="60")
    await sup.job_queued("serial", job.job_id)
    (slot,) = sup.slots.queue["serial"]
    async with asyncio.timeout(GUARD):
        while slot.successor is None and slot.runner is not None:  # noqa: ASYNC110
            if slot.runner.pid != first:  # the successor won the race: idle swap
                pytest.skip("successor ready before the job was claimed")
            await asyncio.sleep(0.02)
    assert slot.successor is not None
    successor = slot.successor.pid
    await sup.stop(grace=0)
    await gone(first)
    await gone(successor)


async def test_a_bound_below_a_fresh_runner_replaces_nothing(
    store: JobStore, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    """Every runner is past a 1 MiB bound from its start: replacing one after
    each job would only start runners for nothing."""
    sup = await make(1)
    hog = await run(store, sup, "serial", **HOG)
    after = await run(store, sup, "serial", action="sleep", seconds="0")
    assert after.runner_pid == hog.runner_pid == slot_pid(sup, "serial")
    assert "below a fresh runner's memory" in caplog.text

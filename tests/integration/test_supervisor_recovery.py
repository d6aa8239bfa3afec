"""QueueSupervisor: crash recovery (leases), destruction and cleanup, graceful
stop, the quote."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from supervisorkit import (
    GUARD,
    Factory,
    pid_alive,
    submit,
    wait_final,
    wait_for,
    wait_line,
)

from aiouws.errors import JobNotFound
from aiouws.execution.leases import LEASE_EXPIRED_MESSAGE
from aiouws.execution.reaper import cleanup
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.models import NewJob
from aiouws.phases import Phase
from aiouws.progress import estimate_quote
from aiouws.results import LocalStore
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

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
    assert await cleanup(store, LocalStore(dirs.root), failed=True) == 1
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

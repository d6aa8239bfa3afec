"""QueueSupervisor: a kind's inline lane runs accepted jobs in this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from supervisorkit import (
    ENV,
    GUARD,
    submit,
    wait_final,
    wait_for,
)

from aiouws.config import Settings
from aiouws.execution.supervisor import QueueSupervisor
from aiouws.jobapi import JobContext
from aiouws.kinds import InlineLane, JobKind
from aiouws.phases import Phase
from aiouws.storage.notify import PhaseListener
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

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

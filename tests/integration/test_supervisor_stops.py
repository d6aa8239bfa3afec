"""QueueSupervisor: jobs aborted, overrunning their duration, failing, killing
their runner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from supervisorkit import (
    NOTIFY_BOUND,
    log_lines,
    pid_alive,
    submit,
    wait_final,
    wait_line,
)

from aiouws.execution.supervisor import QueueSupervisor
from aiouws.phases import Phase
from aiouws.storage.store import JobStore
from aiouws.workdir import JobDirs

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
    aborted = time.monotonic()
    await store.change_phase(job.job_id, Phase.ABORTED, allowed=(Phase.EXECUTING,))
    await wait_line(log, "cancelled")
    # Stopped on the NOTIFY, not when the next heartbeat finds the job aborted.
    assert time.monotonic() - aborted < NOTIFY_BOUND
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
    assert "RuntimeError: boom" in detail and "Traceback" not in detail


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

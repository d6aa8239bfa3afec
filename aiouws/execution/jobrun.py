"""One job's execution on a runner, from hand-over to its recorded outcome.

:class:`JobRun` reads its slot's runner events until the job is done, and writes
the final phase with a guarded ``EXECUTING → COMPLETED/ERROR/ABORTED`` update:
whatever another writer (an ABORT, a lease expiry, a deletion) put there first
wins. Stopping a job (abort, execution duration, shutdown) sends ``cancel``,
waits ``grace`` seconds, then kills the runner's process group and has the slot
refilled. A runner that dies (or is killed) under its job has the job's database
backend, if it reported one, terminated (:mod:`aiouws.storage.backends`). While
the database is unavailable the outcome is written again until it is back
(within :data:`OUTCOME_PATIENCE`): the job keeps its real error, and the
heartbeat keeps its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiouws.contract import Backend, Cancel, Done, DoneStatus, Info, Result
from aiouws.errors import InvalidPhaseError, JobNotFound, StoreError, UsageError
from aiouws.execution.runnerpool import (
    Runner,
    RunnerExited,
    Slot,
    StopRequested,
    exit_description,
)
from aiouws.models import Job, JobResult
from aiouws.phases import ErrorType, Phase
from aiouws.storage.store import JobStore

__all__ = ["JobRun"]

log = logging.getLogger(__name__)
_EXECUTING = (Phase.EXECUTING,)
#: Seconds a runner's note waits before it is written (see JobRun._note).
NOTE_DELAY = 0.1
#: Seconds a job's outcome is retried while the database is unavailable.
OUTCOME_PATIENCE = 300.0


class JobRun:
    """Follows one job on one runner; :meth:`follow` returns once the slot is usable."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        slot: Slot,
        runner: Runner,
        *,
        grace: float,
        refill: Callable[[Slot], Awaitable[None]],
    ) -> None:
        self.job = job
        self.slot = slot
        self._store = store
        self._runner = runner
        self._grace = grace
        self._refill = refill
        self._results: list[JobResult] = []
        self._info: dict[str, str] = {}
        self._info_dirty = False
        self._info_task: asyncio.Task[None] | None = None
        #: Set once the outcome is being written; later stop requests are moot.
        self._settled = False
        #: The database backends of the job's query, as the runner reported them.
        self._backends: list[tuple[int, datetime]] = []

    @property
    def job_id(self) -> str:
        return self.job.job_id

    def request_stop(self, reason: str) -> None:
        """Ask for the job to be stopped (the caller has set its database phase)."""
        if not self._settled:
            self._runner.events.put_nowait(StopRequested(self.job_id, reason))

    async def follow(self) -> None:
        """Run until the job ended, its outcome is recorded and the slot is usable."""
        loop = asyncio.get_running_loop()
        duration = self.job.execution_duration
        deadline = loop.time() + duration if duration > 0 else None
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await self._runner.events.get()
                except TimeoutError:
                    await self._overran(duration)
                    return
                if await self._handle(event):
                    return
        finally:
            if self._info_task is not None:
                self._info_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._info_task

    # -- events -------------------------------------------------------------------

    async def _handle(self, event: Any) -> bool:
        """Process one runner event; True when the job is over."""
        if isinstance(event, RunnerExited):
            await self._died(event.returncode)
            return True
        if getattr(event, "job_id", None) != self.job_id:
            return False  # left over from an earlier job on this runner
        if isinstance(event, Done):
            await self._record(event)
            return True
        if isinstance(event, StopRequested):
            log.info("stopping job", extra=self._extra(reason=event.reason))
            await self._stop()
            return True
        if isinstance(event, Backend):
            self._use_backend(event)
        elif isinstance(event, Info):
            self._note(event.key, event.value)
        elif isinstance(event, Result):
            self._results.append(
                JobResult(
                    id=event.id,
                    file_name=event.file_name,
                    media_type=event.media_type,
                    size=event.size,
                    rows=event.rows,
                )
            )
        return False

    async def _record(self, done: Done) -> None:
        """Write the runner's outcome, unless another writer got there first."""
        self._settled = True
        columns: dict[str, Any] = {
            "results": tuple(self._results),
            "job_info": tuple(self._info.items()),
        }
        if done.status is DoneStatus.COMPLETED:
            phase = Phase.COMPLETED
        else:
            phase = Phase.ERROR if done.status is DoneStatus.ERROR else Phase.ABORTED
            columns.update(
                error_type=ErrorType.FATAL,
                error_message=done.message or f"job {done.status.value}",
                error_has_detail=done.detail_file is not None,
            )
        await self._finish(phase, **columns)

    async def _died(self, returncode: int) -> None:
        """The runner process ended under the job: ERROR, and a fresh runner."""
        self._settled = True
        message = f"runner died ({exit_description(returncode)})"
        log.error("runner died", extra=self._extra(returncode=returncode))
        await self._end_backend()
        await self._finish(
            Phase.ERROR,
            error_type=ErrorType.FATAL,
            error_message=message,
            error_has_detail=False,
            results=tuple(self._results),
            job_info=tuple(self._info.items()),
        )
        await self._refill(self.slot)

    async def _overran(self, duration: int) -> None:
        """The execution duration ran out: ABORTED with a summary, then stop it."""
        self._settled = True
        await self._finish(
            Phase.ABORTED,
            error_type=ErrorType.FATAL,
            error_message=f"execution duration of {duration} s exceeded",
            error_has_detail=False,
            job_info=tuple(self._info.items()),
        )
        await self._stop()

    async def _stop(self) -> None:
        """Cancel the job; kill the runner if it has not answered within ``grace``."""
        self._settled = True
        self._runner.send(Cancel(job_id=self.job_id))
        try:
            async with asyncio.timeout(self._grace):
                while True:
                    event = await self._runner.events.get()
                    if isinstance(event, RunnerExited):
                        break
                    if isinstance(event, Done) and event.job_id == self.job_id:
                        return
        except TimeoutError:
            log.warning(
                "job ignored cancellation; killing its runner", extra=self._extra()
            )
            self._runner.kill()
            await self._runner.exited
            await self._end_backend()
        await self._refill(self.slot)

    async def _finish(self, phase: Phase, **columns: Any) -> None:
        try:
            await self._write_outcome(phase, columns)
        except (InvalidPhaseError, JobNotFound):
            return  # aborted, expired or deleted meanwhile: that phase stands
        except StoreError:
            # The lease runs out and recovery resolves the job to ERROR.
            log.error("cannot record job outcome", extra=self._extra(phase=phase))
            return
        except UsageError as exc:  # the job's own output could not be stored
            log.error("job outcome rejected: %s", exc, extra=self._extra(phase=phase))
            await self._finish(
                Phase.ERROR,
                error_type=ErrorType.FATAL,
                error_message="the job's outcome could not be recorded",
                error_has_detail=False,
            )
            return
        log.info("job finished", extra=self._extra(phase=phase))

    async def _write_outcome(self, phase: Phase, columns: dict[str, Any]) -> None:
        """The guarded final write, tried again while the database is unavailable
        (for :data:`OUTCOME_PATIENCE` s): the job stays in this process's running
        set meanwhile, so the heartbeat renews its lease once the database is back.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + OUTCOME_PATIENCE
        delay = 0.5
        while True:
            try:
                await self._store.change_phase(
                    self.job_id,
                    phase,
                    allowed=_EXECUTING,
                    set_now=("end_time",),
                    **columns,
                )
                return
            except StoreError as exc:
                if loop.time() + delay > give_up:
                    raise
                log.warning(
                    "job outcome not recorded yet, retrying: %s",
                    exc,
                    extra=self._extra(phase=phase),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- the database backend -------------------------------------------------------

    def _use_backend(self, event: Backend) -> None:
        """Remember a backend of the job; record it (for lease recovery) with notes."""
        try:
            backend = (event.pid, datetime.fromisoformat(event.started))
        except ValueError:
            log.warning("bad backend start %r", event.started, extra=self._extra())
            return
        if backend in self._backends:
            return
        self._backends.append(backend)
        self._info_dirty = True
        if self._info_task is None or self._info_task.done():
            self._info_task = asyncio.create_task(self._write_info())

    async def _end_backend(self) -> None:
        """Terminate the job's backends: its runner is gone, its query must go too."""
        if not self._backends:
            return
        try:
            ended = await self._store.terminate_backends(self._backends)
        except StoreError as exc:
            log.warning("cannot end the job's query: %s", exc, extra=self._extra())
            return
        if ended:
            log.info("terminated the dead runner's query", extra=self._extra())

    # -- jobInfo ------------------------------------------------------------------

    def _note(self, key: str, value: str) -> None:
        """Remember a note; write notes in the background, coalescing bursts.

        Notes wait :data:`NOTE_DELAY` before they are written: a short job's
        notes then go out with its final phase, in the same UPDATE.
        """
        self._info[key] = value
        self._info_dirty = True
        if self._info_task is None or self._info_task.done():
            self._info_task = asyncio.create_task(self._write_info())

    async def _write_info(self) -> None:
        await asyncio.sleep(NOTE_DELAY)
        while self._info_dirty and not self._settled:
            self._info_dirty = False
            backend: dict[str, Any] = {}
            if self._backends:
                backend = {
                    "backend_pid": self._backends[0][0],
                    "backend_pids": [pid for pid, _ in self._backends],
                    "backend_starts": [started for _, started in self._backends],
                }
            try:
                await self._store.update(
                    self.job_id,
                    allowed=_EXECUTING,
                    what="record progress",
                    job_info=tuple(self._info.items()),
                    **backend,
                )
            except (InvalidPhaseError, JobNotFound):
                return
            except StoreError as exc:
                log.warning("cannot record progress: %s", exc, extra=self._extra())
                return

    def _extra(self, **more: object) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "kind": self.job.kind,
            "owner": self.job.owner,
            "pid": self._runner.pid,
            **more,
        }

"""Reconciliation: the jobs this host runs, checked against the table after the
listener may have missed changes.

ABORTs and deletions made on other hosts reach a running job through the
PhaseListener's NOTIFY. While its connection is down those notifications are
lost, so whenever the listener says so (:meth:`PhaseListener.on_lost`: when the
connection is lost, and again once a new one listens) the phases of the jobs
this host runs are read back in one statement, and every job that is no longer
EXECUTING (aborted, ended or deleted elsewhere meanwhile) is stopped, as its
NOTIFY would have done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from aiouws.errors import StoreError
from aiouws.execution.jobrun import JobRun
from aiouws.phases import Phase
from aiouws.storage.store import JobStore

__all__ = ["Reconciler"]

log = logging.getLogger(__name__)


class Reconciler:
    """Stops the ``running`` jobs the table no longer has EXECUTING."""

    def __init__(
        self, store: JobStore, running: Callable[[], Mapping[str, JobRun]]
    ) -> None:
        self._store = store
        self._running = running
        self._task: asyncio.Task[None] | None = None
        self._again = False
        #: How many jobs reconciliation stopped (for tests and logs).
        self.stopped = 0

    def soon(self) -> None:
        """Reconcile in the background (once more if a pass is under way)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(
            self._passes(), name="reconcile"
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _passes(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                await self.reconcile()
            except StoreError as exc:  # the database is away: the next pass
                log.info("reconciliation deferred: %s", exc)

    async def reconcile(self) -> int:
        """One pass: stop the running jobs not EXECUTING in the table; how many."""
        ids = list(self._running())
        if not ids:
            return 0
        phases = await self._store.phases_of(ids)
        stopped = 0
        for job_id in ids:
            phase = phases.get(job_id)
            run = self._running().get(job_id)
            if phase is Phase.EXECUTING or run is None:
                continue
            what = "deleted" if phase is None else phase.value
            log.warning(
                "job %s elsewhere while the listener was down; stopping it",
                what,
                extra={"job_id": job_id},
            )
            run.request_stop(f"job {what} elsewhere (reconciled)")
            stopped += 1
        self.stopped += stopped
        return stopped

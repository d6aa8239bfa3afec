"""Job destruction: the destruction-time timer and the operators' cleanup.

A job past its destruction time is destroyed in this order: aborted first if it
executes (so no runner writes into a directory being removed), then its row
(clients see it gone), then its files in the results store (whichever host
wrote them). Any number of server
processes may run the timer; deleting a row twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiouws.errors import ResultsUnavailable, StoreError
from aiouws.phases import Phase
from aiouws.results.store import ResultStore
from aiouws.storage.store import JobStore

__all__ = ["FORGOTTEN_AFTER", "DestructionTimer", "cleanup", "destroy_job"]

log = logging.getLogger(__name__)

#: A PENDING job untouched for this long counts as forgotten (``cleanup``).
FORGOTTEN_AFTER = timedelta(days=1)
#: The timer re-reads the next destruction time at least this often (seconds).
MAX_SLEEP = 60.0


class Aborter(Protocol):
    """What destruction needs from the supervisor."""

    async def job_aborted(self, job_id: str) -> None: ...


async def destroy_job(
    store: JobStore,
    results: ResultStore,
    job_id: str,
    supervisor: Aborter | None,
    *,
    reason: str,
) -> bool:
    """Abort the job if it executes, delete its row, then its files.

    Returns False if the job was already gone. Without a supervisor, an executing
    job is only marked ABORTED; the process running it hears of the change
    (NOTIFY, then the deletion) and stops it.
    """
    await store.mark_aborted(job_id, reason)
    if supervisor is not None:
        await supervisor.job_aborted(job_id)
    gone = await store.delete(job_id)
    try:
        await results.remove_job(job_id)
    except ResultsUnavailable as exc:  # the row is gone: the sweep takes them
        log.warning(
            "files of a destroyed job left to the sweep: %s",
            exc,
            extra={"job_id": job_id},
        )
    if gone is not None:
        log.info(
            "job destroyed",
            extra={
                "job_id": job_id,
                "phase": gone.phase.value,
                "owner": gone.owner,
                "reason": reason,
            },
        )
    return gone is not None


class DestructionTimer:
    """Sleeps until the next destruction time and destroys the jobs due then."""

    def __init__(
        self,
        store: JobStore,
        results: ResultStore,
        supervisor: Aborter | None,
        *,
        max_sleep: float = MAX_SLEEP,
    ) -> None:
        self._store = store
        self._results = results
        self._supervisor = supervisor
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Re-read the next destruction time now (a job was created or changed)."""
        self._wake.set()

    async def run(self) -> None:
        """Forever: destroy what is due, then sleep until the next one is."""
        while True:
            try:
                await self.destroy_due()
                delay = await self._delay()
            except StoreError as exc:
                log.warning("destruction pass failed: %s", exc)
                delay = self._max_sleep
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def destroy_due(self) -> int:
        """Destroy every job whose destruction time has passed; return how many."""
        count = 0
        for job_id in await self._store.due_for_destruction(datetime.now(UTC)):
            count += await destroy_job(
                self._store,
                self._results,
                job_id,
                self._supervisor,
                reason="destruction time reached",
            )
        return count

    async def _delay(self) -> float:
        next_time = await self._store.next_destruction_time()
        if next_time is None:
            return self._max_sleep
        seconds = (next_time - datetime.now(UTC)).total_seconds()
        return min(max(seconds, 0.0), self._max_sleep)


async def cleanup(
    store: JobStore,
    results: ResultStore,
    *,
    failed: bool = False,
    completed: bool = False,
    all: bool = False,
    forgotten: bool = False,
) -> int:
    """Remove jobs as DaCHS's ``cleanupJobsTable`` does; return how many went.

    Always removes jobs past their destruction time. ``failed`` adds every job in
    ERROR or ABORTED, ``completed`` every COMPLETED one, ``forgotten`` every
    PENDING job created more than :data:`FORGOTTEN_AFTER` (one day) ago, and
    ``all`` every job whatsoever (executing ones are aborted first). The first
    three should not be used on production services: they remove jobs clients
    may still want.
    """
    now = datetime.now(UTC)
    removed = 0
    if all:
        ids = await store.job_ids_for_cleanup(every=True)
    else:
        ids = await store.job_ids_for_cleanup(
            phases=_phases(failed=failed, completed=completed), destroyed_before=now
        )
        if forgotten:
            ids += await store.job_ids_for_cleanup(
                phases=(Phase.PENDING,), created_before=now - FORGOTTEN_AFTER
            )
    for job_id in dict.fromkeys(ids):
        removed += await destroy_job(store, results, job_id, None, reason="cleaned up")
    return removed


def _phases(*, failed: bool, completed: bool) -> tuple[Phase, ...]:
    phases: tuple[Phase, ...] = ()
    if failed:
        phases += (Phase.ERROR, Phase.ABORTED)
    if completed:
        phases += (Phase.COMPLETED,)
    return phases

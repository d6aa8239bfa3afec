"""The results store's sweep: files of jobs that have no row any more.

A job's files normally go with its row (DELETE, ARCHIVE, destruction, on any
host), but a host can die between the two, or a runner may still be writing when
its job is deleted. Every ``interval`` seconds the sweep lists the jobs the store
holds files of, asks the database which of them exist, and removes the files of
the others once none of them changed for ``grace`` seconds (uploads are placed
just before their job's row is written). Any number of hosts may sweep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from aiouws.errors import ServiceUnavailable
from aiouws.results.store import ResultStore

__all__ = ["OrphanSweep"]

log = logging.getLogger(__name__)


class KnownJobs(Protocol):
    async def existing_ids(self, job_ids: list[str]) -> set[str]: ...


class OrphanSweep:
    """Removes stored files without a job row (see the module)."""

    def __init__(
        self,
        results: ResultStore,
        jobs: KnownJobs,
        *,
        interval: float,
        grace: float,
    ) -> None:
        self.results = results
        self.jobs = jobs
        self.interval = interval
        self.grace = grace

    async def sweep(self) -> int:
        """One pass; returns how many jobs' files were removed."""
        stored = await self.results.job_ids()
        if not stored:
            return 0
        orphans = stored - await self.jobs.existing_ids(sorted(stored))
        cutoff = time.time() - self.grace
        removed = 0
        for job_id in sorted(orphans):
            changed = await self.results.last_modified(job_id)
            if changed is None or changed <= cutoff:
                await self.results.remove_job(job_id)
                removed += 1
        if removed:
            log.info("results sweep removed orphans", extra={"jobs": removed})
        return removed

    async def run(self) -> None:
        """Forever: sweep, then sleep ``interval`` s (a failed pass is logged)."""
        while True:
            try:
                await self.sweep()
            except ServiceUnavailable as exc:
                log.warning("results sweep failed: %s", exc)
            await asyncio.sleep(self.interval)

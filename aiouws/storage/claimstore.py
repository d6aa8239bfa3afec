"""The job table's execution side: claims, leases, recovery (a base of
:class:`.store.JobStore`).

Claims run under the claim lock (:mod:`.claims`: the global limits hold across
hosts); leases are renewed by the heartbeat; recovery ends lost jobs in ERROR
and terminates their database backends on every catalogue server
(:mod:`.backends`), whichever host recovers them. The store provides the
connection handling (``_claim_locked``, ``_fetch``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg

from aiouws.models import Job
from aiouws.phases import Phase
from aiouws.storage.backends import Backend, recorded_backends
from aiouws.storage.claims import (
    CLAIM_FOR_RUNNERS,
    CLAIM_JOB,
    NO_CAP,
    QUEUE_WAITING,
    Claim,
)
from aiouws.storage.queries import RENEW_LEASES, fail_executing_sql
from aiouws.storage.rows import job_from_row

__all__ = ["JobClaims"]


class JobClaims:
    """Claims, leases and recovery of the job table (:class:`.store.JobStore`)."""

    async def executing(
        self,
        *,
        claimed_by: str | None = None,
        lease_expired_before: datetime | None = None,
    ) -> list[Job]:
        """EXECUTING jobs, optionally only those of one claimant or with old leases."""
        clauses = ["phase = 'EXECUTING'"]
        args: list[Any] = []
        if claimed_by is not None:
            args.append(claimed_by)
            clauses.append(f"claimed_by = ${len(args)}")
        if lease_expired_before is not None:
            args.append(lease_expired_before)
            clauses.append(f"lease_until < ${len(args)}")
        rows = await self._fetch(
            f"SELECT * FROM uws.job WHERE {' AND '.join(clauses)}", *args
        )
        return [job_from_row(r) for r in rows]

    async def renew_leases(
        self, claimed_by: str, lease_seconds: float, job_ids: Sequence[str]
    ) -> int:
        """Extend the leases of the jobs ``claimed_by`` really runs (the heartbeat).

        Only the given jobs: a claimed job that this process lost track of must
        let its lease run out, so that recovery ends it.
        """
        status = await self._execute(
            RENEW_LEASES, claimed_by, lease_seconds, list(job_ids)
        )
        return int(status.split()[-1])

    async def claim_for_runners(
        self,
        kind: str,
        claimed_by: str,
        lease_seconds: float,
        runner_pids: list[int],
        *,
        max_kind: int = NO_CAP,
        max_owner: int = NO_CAP,
    ) -> list[Job]:
        """Claim up to one QUEUED job of ``kind`` per runner, oldest first,
        within the global caps: fewer than ``max_kind`` jobs of the kind in
        runner lanes and ``max_owner`` per owner, across all hosts.

        One statement under the claim lock (:mod:`.claims`) marks them
        EXECUTING with start time, lease and the runner pid: the i-th job in
        queue order goes to ``runner_pids[i]``. Returns the claimed jobs in
        that order.

        The statement reads only the head of the queue: when an owner with
        room for fewer jobs than it has there leaves runners free, it runs
        again for those (same transaction: it sees the jobs just claimed, that
        owner now at its cap) until every runner has a job or none is taken.
        """
        ordered: list[asyncpg.Record] = []
        async with self._claim_locked() as conn:
            while len(ordered) < len(runner_pids):
                rows = await conn.fetch(
                    CLAIM_FOR_RUNNERS,
                    kind,
                    claimed_by,
                    lease_seconds,
                    runner_pids[len(ordered) :],
                    max_kind,
                    max_owner,
                )
                if not rows:
                    break
                ordered += sorted(rows, key=lambda r: int(r["n"]))
        return [job_from_row(r) for r in ordered]

    async def claim_job(self, job_id: str, claim: Claim) -> Job | None:
        """Claim one QUEUED job by id (an inline lane's) within the claim's caps;
        None if it is not queued or the caps leave no room."""
        async with self._claim_locked() as conn:
            row = await conn.fetchrow(
                CLAIM_JOB,
                job_id,
                claim.claimed_by,
                claim.lease_seconds,
                claim.runner_pid,
                claim.max_owner,
                claim.max_lane,
                claim.inline,
            )
        return job_from_row(row) if row is not None else None

    async def queue_waiting(self, kind: str) -> bool:
        """Whether QUEUED jobs of ``kind`` wait (for a claim that found fewer
        than it could take: the queue is empty, or the caps hold it back)."""
        return bool(await self._fetchval(QUEUE_WAITING, kind))

    async def fail_expired_leases(self, message: str) -> list[str]:
        """Move every EXECUTING job whose lease has run out to ERROR; return their ids.

        One statement, so a claimant renewing its lease at the same moment either
        wins (the job stays EXECUTING) or loses cleanly.
        """
        return await self._fail_executing("lease_until < now()", message)

    async def fail_claimed(self, claimed_by: str, message: str) -> list[str]:
        """Move every EXECUTING job of ``claimed_by`` to ERROR; return their ids."""
        return await self._fail_executing("claimed_by = $2", message, claimed_by)

    async def _fail_executing(
        self, condition: str, message: str, *args: Any
    ) -> list[str]:
        """End matching EXECUTING jobs in ERROR and terminate their queries."""
        rows = await self._fetch(fail_executing_sql(condition), message, *args)
        await self.terminate_backends(recorded_backends(rows))
        return [r["job_id"] for r in rows]

    async def phases_of(self, job_ids: Sequence[str]) -> dict[str, Phase]:
        """The phases of jobs ``job_ids`` (a job that is gone is left out): what a
        host re-reads of the jobs it runs after its listener missed changes."""
        rows = await self._fetch(
            "SELECT job_id, phase FROM uws.job WHERE job_id = ANY($1::text[])",
            list(job_ids),
        )
        return {r["job_id"]: Phase(r["phase"]) for r in rows}

    # -- what the store provides ---------------------------------------------------

    def _claim_locked(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def terminate_backends(self, backends: Sequence[Backend]) -> int:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        raise NotImplementedError

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError

    async def _execute(self, sql: str, *args: Any) -> str:
        raise NotImplementedError

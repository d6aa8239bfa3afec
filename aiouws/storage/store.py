"""JobStore: all SQL of the UWS job table, behind one class.

Every phase change is one guarded statement (``... WHERE phase = ANY($allowed)
RETURNING *``): there is no read-check-write across an ``await``. Rows become
frozen :class:`~aiouws.models.Job` objects (:mod:`.rows`); no asyncpg
record leaves this module. The statements it runs are built in
:mod:`.queries`; the schema itself is :mod:`.schema`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import asyncpg

from aiouws.errors import InvalidPhaseError, JobNotFound, StoreError, UsageError
from aiouws.models import Job, JobFilter, JobRef, NewJob
from aiouws.phases import (
    ErrorType,
    Phase,
    PhaseChangeError,
    allowed_sources,
)
from aiouws.storage.backends import (
    Backend,
    terminate_backends,
    terminate_on_replicas,
)
from aiouws.storage.claims import (
    CLAIM_LOCK,
)
from aiouws.storage.claimstore import JobClaims
from aiouws.storage.database import Database
from aiouws.storage.outage import DRIVER_ERRORS, unavailable_cause, unavailable_message
from aiouws.storage.queries import (
    NO_CAP,
    OWNER_ACTIVE,
    OWNER_LOCK,
    Claim,
    insert_sql,
    list_sql,
    update_sql,
)
from aiouws.storage.reads import JobCounts
from aiouws.storage.rows import job_from_row

__all__ = ["JobStore"]

log = logging.getLogger(__name__)


@contextmanager
def _unavailable() -> Iterator[None]:
    """Translate an unavailable database (:mod:`.outage`) into StoreError (503)."""
    try:
        yield
    except asyncpg.DataError as exc:  # e.g. text the database cannot store
        raise UsageError(f"invalid value: {exc}") from exc
    except DRIVER_ERRORS as exc:
        cause = unavailable_cause(exc, connecting=True)
        if cause is None:
            raise
        raise StoreError(f"job {unavailable_message(cause)}") from exc


class JobStore(JobClaims, JobCounts):
    """The job table. All methods are safe to call concurrently from many tasks."""

    def __init__(self, pool: asyncpg.Pool, catalogue: Sequence[Database] = ()) -> None:
        self._pool = pool
        #: The catalogue replicas, as the service logs into them: where the
        #: backends of user queries may run besides the primary.
        self._catalogue = tuple(catalogue)

    # -- reading ------------------------------------------------------------------

    async def get(self, job_id: str) -> Job:
        """The job with ``job_id``. Raises :class:`JobNotFound`."""
        row = await self._fetchrow("SELECT * FROM uws.job WHERE job_id = $1", job_id)
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    async def list_jobs(self, flt: JobFilter) -> list[JobRef]:
        """The job list of UWS 1.1, newest first."""
        sql, args = list_sql(flt)
        rows = await self._fetch(sql, *args)
        return [
            JobRef(
                job_id=r["job_id"],
                kind=r["kind"],
                phase=Phase(r["phase"]),
                run_id=r["run_id"],
                owner=r["owner"],
                creation_time=r["creation_time"],
            )
            for r in rows
        ]

    # -- writing ------------------------------------------------------------------

    async def create(
        self,
        new: NewJob,
        *,
        phase: Phase = Phase.PENDING,
        max_queued: int = NO_CAP,
        claim: Claim | None = None,
    ) -> Job | None:
        """Insert a job, unless its owner is at the queued cap; None means the
        cap is hit.

        ``phase=QUEUED`` creates it already queued; with ``claim`` it is created
        EXECUTING, claimed as given (an inline lane's job), if the global caps
        (:mod:`.claims`) leave room, else QUEUED. One statement (a round trip):
        the owner's QUEUED/HELD jobs are counted under the owner's lock, which
        the statement takes (:func:`.queries.insert_sql`): caps hold under
        concurrency.
        """
        sql, args = insert_sql(new, phase, max_queued, claim)
        row = await self._fetchrow(sql, *args)
        if row is None:
            return None
        return job_from_row(row)

    async def change_phase(
        self,
        job_id: str,
        new: Phase,
        *,
        allowed: Iterable[Phase] | None = None,
        set_now: Sequence[str] = (),
        **columns: Any,
    ) -> Job:
        """Move a job to ``new`` if its phase is in ``allowed``; set other columns.

        ``allowed`` defaults to every phase the transition table lets reach
        ``new``. ``set_now`` names timestamp columns to set to the server's
        ``now()``.

        Raises
        ------
        JobNotFound
            No such job.
        InvalidPhaseError
            The job's phase is not in ``allowed``.
        """
        sources = frozenset(allowed) if allowed is not None else allowed_sources(new)
        return await self._guarded_update(
            job_id, sources, f"change to {new.value}", set_now, phase=new, **columns
        )

    async def queue_capped(
        self,
        job_id: str,
        owner: str | None,
        *,
        allowed: Iterable[Phase],
        max_queued: int,
        **columns: Any,
    ) -> Job | None:
        """Move a job whose phase is in ``allowed`` to QUEUED (``queued_time``
        now, other columns set), unless ``owner`` is at the queued cap: then
        None (the executing cap holds back claims, it refuses nothing).

        Counted and changed under the owner's lock, as :meth:`create` does.
        Raises :class:`JobNotFound` or :class:`InvalidPhaseError` as
        :meth:`change_phase` does.
        """
        sources = frozenset(allowed)
        async with self._owner_locked(owner) as conn:
            counts = await conn.fetchrow(OWNER_ACTIVE, owner)
            assert counts is not None  # an aggregate always has a row
            if counts["queued"] >= max_queued:
                return None
            return await self._guarded_update(
                job_id,
                sources,
                "change to QUEUED",
                ("queued_time",),
                conn=conn,
                phase=Phase.QUEUED,
                **columns,
            )

    async def update(
        self,
        job_id: str,
        *,
        allowed: Iterable[Phase],
        what: str,
        set_now: Sequence[str] = (),
        **columns: Any,
    ) -> Job:
        """Set columns of a job whose phase is in ``allowed`` (phase unchanged)."""
        return await self._guarded_update(
            job_id, frozenset(allowed), what, set_now, **columns
        )

    async def delete(self, job_id: str) -> Job | None:
        """Remove a job row; return what it was, or None if it was already gone."""
        row = await self._fetchrow(
            "DELETE FROM uws.job WHERE job_id = $1 RETURNING *", job_id
        )
        return job_from_row(row) if row is not None else None

    # -- execution (the queue supervisor and the reaper) ----------------------------

    async def mark_aborted(self, job_id: str, message: str) -> Job | None:
        """EXECUTING → ABORTED with ``message`` as its error summary.

        Returns None when the job was no longer executing (or is gone).
        """
        try:
            return await self.change_phase(
                job_id,
                Phase.ABORTED,
                allowed=(Phase.EXECUTING,),
                set_now=("end_time",),
                error_type=ErrorType.FATAL,
                error_message=message,
                error_has_detail=False,
            )
        except (InvalidPhaseError, JobNotFound):
            return None

    async def job_ids_for_cleanup(
        self,
        *,
        phases: Iterable[Phase] = (),
        created_before: datetime | None = None,
        destroyed_before: datetime | None = None,
        every: bool = False,
    ) -> list[str]:
        """Ids of jobs matching any of the given criteria (``every``: all jobs).

        ``phases`` and ``created_before`` together select jobs in those phases
        created before that time; ``destroyed_before`` selects jobs whose
        destruction time has passed.
        """
        if every:
            rows = await self._fetch("SELECT job_id FROM uws.job")
            return [r["job_id"] for r in rows]
        wanted = sorted(p.value for p in phases)
        rows = await self._fetch(
            "SELECT job_id FROM uws.job WHERE (phase = ANY($1::uws.phase[])"
            " AND ($2::timestamptz IS NULL OR creation_time < $2))"
            " OR destruction_time <= $3",
            wanted,
            created_before,
            destroyed_before,
        )
        return [r["job_id"] for r in rows]

    async def terminate_backends(self, backends: Sequence[Backend]) -> int:
        """Terminate the given database backends (see :mod:`.backends`) on the
        primary and on every catalogue replica (a job's query ran on one of
        them; pid and start time pick it out), from whichever host calls; the
        replicas at once, within :data:`~.backends.REPLICA_SECONDS` in all."""
        if not backends:
            return 0
        with _unavailable():
            ended = await terminate_backends(self._pool, backends)
        return ended + await terminate_on_replicas(self._catalogue, backends)

    # -- internals ----------------------------------------------------------------

    @asynccontextmanager
    async def _owner_locked(self, owner: str | None) -> AsyncIterator[Any]:
        """A pooled connection in a transaction that holds ``owner``'s admission
        lock (:data:`OWNER_LOCK`) until it ends: count and write there, as
        :meth:`create`'s statement does (which takes the claim lock after it for
        the fast lane; claims take only the claim lock, so the two never wait
        for each other in a circle)."""
        with _unavailable():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(OWNER_LOCK, owner)
                yield conn

    @asynccontextmanager
    async def _claim_locked(self) -> AsyncIterator[Any]:
        """A pooled connection in a transaction that holds the claim lock
        (:data:`~aiouws.storage.claims.CLAIM_LOCK`): its next statement sees
        every claim committed before (a new snapshot per statement)."""
        with _unavailable():
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(CLAIM_LOCK)
                yield conn

    async def _guarded_update(
        self,
        job_id: str,
        sources: frozenset[Phase],
        what: str,
        set_now: Sequence[str],
        *,
        conn: Any = None,
        **columns: Any,
    ) -> Job:
        sql, args = update_sql(job_id, sources, set_now, columns)
        db = self._pool if conn is None else conn
        with _unavailable():
            row = await db.fetchrow(sql, *args)
            if row is not None:
                return job_from_row(row)
            current = await db.fetchval(
                "SELECT phase FROM uws.job WHERE job_id = $1", job_id
            )
        if current is None:
            raise JobNotFound(job_id)
        error = PhaseChangeError(Phase(current), what)
        raise InvalidPhaseError(str(error)) from error

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        with _unavailable():
            return await self._pool.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        with _unavailable():
            return await self._pool.fetch(sql, *args)

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        with _unavailable():
            return await self._pool.fetchval(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        with _unavailable():
            return str(await self._pool.execute(sql, *args))

"""The job table's counting reads: a base of :class:`.store.JobStore`.

The reads that only count or list ids (caps, queue positions, metrics, the
reaper's schedule); the store runs their statements (``_fetch``, ``_fetchval``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from aiouws.models import Job
from aiouws.phases import Phase

__all__ = ["JobCounts"]


class JobCounts:
    """The job table's counting reads (:class:`.store.JobStore` runs them)."""

    async def count_active(self, owner: str | None) -> dict[Phase, int]:
        """How many of ``owner``'s jobs are QUEUED, EXECUTING, HELD or SUSPENDED."""
        rows = await self._fetch(
            "SELECT phase, count(*) AS n FROM uws.job"
            " WHERE owner IS NOT DISTINCT FROM $1"
            " AND phase IN ('QUEUED', 'EXECUTING', 'HELD', 'SUSPENDED') GROUP BY phase",
            owner,
        )
        return {Phase(r["phase"]): r["n"] for r in rows}

    async def count_by_kind(self) -> dict[tuple[str, Phase], int]:
        """How many jobs each (kind, phase) has (for metrics)."""
        rows = await self._fetch(
            "SELECT kind, phase, count(*) AS n FROM uws.job GROUP BY kind, phase"
        )
        return {(r["kind"], Phase(r["phase"])): r["n"] for r in rows}

    async def queue_position(self, job: Job) -> int | None:
        """How many QUEUED jobs of the same kind are ahead of ``job``."""
        if job.phase is not Phase.QUEUED or job.queued_time is None:
            return None
        value = await self._fetchval(
            "SELECT count(*) FROM uws.job WHERE phase = 'QUEUED' AND kind = $1"
            " AND (queued_time, job_id) < ($2, $3)",
            job.kind,
            job.queued_time,
            job.job_id,
        )
        return int(value or 0)

    async def recent_run_seconds(self, kind: str, sample: int = 20) -> list[float]:
        """Wall-clock run times of the kind's most recently completed jobs."""
        rows = await self._fetch(
            "SELECT extract(epoch FROM end_time - start_time) AS s FROM uws.job"
            " WHERE kind = $1 AND phase = 'COMPLETED' AND end_time IS NOT NULL"
            " AND start_time IS NOT NULL ORDER BY end_time DESC LIMIT $2",
            kind,
            sample,
        )
        return [float(r["s"]) for r in rows]

    async def due_for_destruction(self, now: datetime, limit: int = 500) -> list[str]:
        rows = await self._fetch(
            "SELECT job_id FROM uws.job WHERE destruction_time <= $1"
            " ORDER BY destruction_time LIMIT $2",
            now,
            limit,
        )
        return [r["job_id"] for r in rows]

    async def next_destruction_time(self) -> datetime | None:
        value = await self._fetchval("SELECT min(destruction_time) FROM uws.job")
        return value if isinstance(value, datetime) else None

    async def count_queued(self, kind: str) -> int:
        value = await self._fetchval(
            "SELECT count(*) FROM uws.job WHERE phase = 'QUEUED' AND kind = $1", kind
        )
        return int(value or 0)

    async def summaries(
        self, job_ids: list[str], owner: str | None, chars: int
    ) -> dict[str, str]:
        """Of ``owner``'s jobs among ``job_ids``: the first ``chars`` characters
        of each one's QUERY parameter, or else of its parameters as
        ``name=value`` (a job list page's summaries, in one read)."""
        rows = await self._fetch(
            "SELECT job_id, left(coalesce("
            "(SELECT p->>'value' FROM jsonb_array_elements(parameters)"
            " WITH ORDINALITY AS e(p, n) WHERE p->>'name' = 'query' ORDER BY n"
            " LIMIT 1),"
            "(SELECT string_agg((p->>'name') || '=' || (p->>'value'), ' ' ORDER BY n)"
            " FROM jsonb_array_elements(parameters) WITH ORDINALITY AS e(p, n)),"
            " ''), $3) AS summary"
            " FROM uws.job WHERE job_id = ANY($1::text[])"
            " AND owner IS NOT DISTINCT FROM $2",
            job_ids,
            owner,
            chars,
        )
        return {r["job_id"]: r["summary"] for r in rows}

    async def existing_ids(self, job_ids: list[str]) -> set[str]:
        """Which of ``job_ids`` have a row (the results store's sweep)."""
        rows = await self._fetch(
            "SELECT job_id FROM uws.job WHERE job_id = ANY($1::text[])", job_ids
        )
        return {r["job_id"] for r in rows}

    async def count_executing(self, kind: str) -> int:
        """How many jobs of ``kind`` execute in runner lanes, on all hosts."""
        value = await self._fetchval(
            "SELECT count(*) FROM uws.job WHERE phase = 'EXECUTING' AND kind = $1"
            " AND NOT inline_lane",
            kind,
        )
        return int(value or 0)

    # -- what the store provides ---------------------------------------------------

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        raise NotImplementedError

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError
